//! tts events (being written).
