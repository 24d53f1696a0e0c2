//! The fixed material `agentbus bench voice` and the WER test use: twenty English
//! sentences, spoken by espeak-ng at run time.

/// Twenty sentences of everyday English (questions and statements an assistant hears).
pub const SENTENCES: [&str; 20] = [
    "Hello. What is the capital of France?",
    "What time is it in Tokyo right now?",
    "Please set a timer for ten minutes.",
    "How many people live in New York City?",
    "Turn off the lights in the kitchen.",
    "What is the weather going to be like tomorrow?",
    "Can you tell me a short story about a dragon?",
    "Remind me to call my mother at six o'clock.",
    "How far is the moon from the earth?",
    "Play some relaxing music in the living room.",
    "What is seventeen times twenty three?",
    "Who wrote the novel Pride and Prejudice?",
    "I would like to book a table for two people.",
    "How do I make a cup of green tea?",
    "Send a message to John saying I am running late.",
    "What is the tallest mountain in the world?",
    "Translate good morning into Spanish.",
    "Add milk and bread to my shopping list.",
    "When does the next train to London leave?",
    "Thank you, that will be all for today.",
];
