//! Our forward pass ([`agentbus_local::llama`]) against candle-transformers'
//! `quantized_llama` on the real weights: the same next token, logits close, whether the
//! prompt is fed at once (the f32 batch path), token by token (the Q8_0 path), or split
//! around a cached prefix. Skips with a note when the model is not pulled.

mod common;

use common::model_pulled;
use std::fs::File;

use agentbus_local::convert::ensure_q8;
use agentbus_local::llama::{KvCache, Llama};
use agentbus_local::template::{Turn, TurnRole};
use agentbus_local::{DEFAULT_MODEL, LocalModel, ModelDir};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

fn argmax(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

/// The largest difference, relative to the largest logit's magnitude.
fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn our_forward_pass_matches_candles_quantized_llama() {
    if !model_pulled() {
        return;
    }
    let dir = ModelDir::from_env().unwrap();
    let path = ensure_q8(&dir, DEFAULT_MODEL).unwrap();
    let model = LocalModel::load(&dir, DEFAULT_MODEL).unwrap();
    let prompt = model
        .prompt(&[Turn::new(
            TurnRole::User,
            "What is the capital of France? Answer in one word.",
        )])
        .unwrap();

    let device = Device::Cpu;
    let mut file = File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let ours = Llama::from_gguf(&content, &mut file, &device).unwrap();
    let mut file = File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut reference = ModelWeights::from_gguf(content, &mut file, &device).unwrap();
    let input = Tensor::new(prompt.as_slice(), &device)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let expected: Vec<f32> = reference
        .forward(&input, 0)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();

    // At once: the batch (f32) path.
    let mut cache = KvCache::default();
    let batch = ours.forward(&prompt, &mut cache).unwrap();
    assert_eq!(cache.len(), prompt.len());
    assert_eq!(argmax(&batch), argmax(&expected));
    let gap = relative_gap(&batch, &expected);
    assert!(gap < 0.05, "batch logits differ by {gap}");

    // Token by token: the single-row (Q8_0) path.
    let mut cache = KvCache::default();
    let mut single = Vec::new();
    for token in &prompt {
        single = ours.forward(&[*token], &mut cache).unwrap();
    }
    assert_eq!(argmax(&single), argmax(&expected));
    let gap = relative_gap(&single, &expected);
    assert!(gap < 0.05, "token-by-token logits differ by {gap}");

    // A cached prefix, then the rest: the mask and positions after a prefix.
    let split = prompt.len() / 2;
    let mut cache = KvCache::default();
    ours.forward(&prompt[..split], &mut cache).unwrap();
    let resumed = ours.forward(&prompt[split..], &mut cache.clone()).unwrap();
    assert_eq!(argmax(&resumed), argmax(&expected));
    let gap = relative_gap(&resumed, &expected);
    assert!(gap < 0.05, "resumed logits differ by {gap}");
}
