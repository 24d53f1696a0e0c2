//! [`SileroVad`]: the Silero VAD network (MIT, snakers4/silero-vad) run with candle from
//! the 16 kHz safetensors file its own PyPI wheel ships.
//!
//! The network, per 512-sample window (32 ms at 16 kHz) with the previous 64 samples as
//! context: reflect-pad by 64 → a learned STFT (a 256-tap convolution, stride 128, real
//! and imaginary halves) → magnitude → four 1-D convolutions with ReLU → an LSTM cell
//! (state carried between windows) → ReLU → a 1×1 convolution → sigmoid, averaged.

use std::collections::HashMap;
use std::path::Path;

use agentbus_local::ModelSpec;
use candle_core::{D, Device, Tensor};

use crate::audio::i16_to_f32;
use crate::error::{Result, VoiceError};
use crate::vad::Vad;

/// Silero VAD 6.2.3's 16 kHz weights, as shipped by the `silero-vad==6.2.3` wheel.
pub const SILERO_VAD: ModelSpec = ModelSpec {
    name: "silero-vad",
    package: "silero-vad",
    version: "6.2.3",
    wheel_member: "silero_vad/data/silero_vad_16k.safetensors",
    file_name: "silero_vad_16k.safetensors",
    sha256: "c59271c284ae9c8335d795d60e0bfdb71aaaceec578d9bd9ffc1b8153c319ea1",
    size: 1_239_748,
    license: "MIT, snakers4/silero-vad via PyPI silero-vad 6.2.3",
};

const WINDOW: usize = 512;
const CONTEXT: usize = 64;
const PAD: usize = 64;
const HIDDEN: usize = 128;

struct Weights {
    stft: Tensor,
    convs: [(Tensor, Tensor, usize); 4],
    w_ih: Tensor,
    w_hh: Tensor,
    bias: Tensor,
    final_w: Tensor,
    final_b: Tensor,
}

/// The Silero voice activity detector (16 kHz, 512-sample windows).
pub struct SileroVad {
    weights: Weights,
    context: Vec<f32>,
    h: Tensor,
    c: Tensor,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroVad").finish_non_exhaustive()
    }
}

fn take(tensors: &mut HashMap<String, Tensor>, name: &str, path: &Path) -> Result<Tensor> {
    tensors.remove(name).ok_or_else(|| VoiceError::BadModel {
        path: path.to_owned(),
        reason: format!("no tensor `{name}`: not a Silero VAD 16 kHz safetensors file"),
    })
}

impl SileroVad {
    /// Loads the weights from `path` (the verified file `agentbus model pull silero-vad`
    /// installs; see [`crate::models`]).
    pub fn load(path: &Path) -> Result<Self> {
        let device = Device::Cpu;
        let mut t = candle_core::safetensors::load(path, &device)
            .map_err(VoiceError::candle(format!("reading {}", path.display())))?;
        let conv = |t: &mut HashMap<String, Tensor>, i: usize, stride: usize| -> Result<_> {
            Ok((
                take(t, &format!("conv{i}.weight"), path)?,
                take(t, &format!("conv{i}.bias"), path)?,
                stride,
            ))
        };
        let check =
            |r: candle_core::Result<Tensor>| r.map_err(VoiceError::candle("loading Silero VAD"));
        let bias = check(take(&mut t, "lstm_cell.bias_ih", path)?.add(&take(
            &mut t,
            "lstm_cell.bias_hh",
            path,
        )?))?;
        let weights = Weights {
            stft: take(&mut t, "stft_conv.weight", path)?,
            convs: [
                conv(&mut t, 1, 1)?,
                conv(&mut t, 2, 2)?,
                conv(&mut t, 3, 2)?,
                conv(&mut t, 4, 1)?,
            ],
            w_ih: check(
                take(&mut t, "lstm_cell.weight_ih", path)?
                    .t()
                    .and_then(|w| w.contiguous()),
            )?,
            w_hh: check(
                take(&mut t, "lstm_cell.weight_hh", path)?
                    .t()
                    .and_then(|w| w.contiguous()),
            )?,
            bias: check(bias.unsqueeze(0))?,
            final_w: check(take(&mut t, "final_conv.weight", path)?.reshape((1, HIDDEN)))?,
            final_b: take(&mut t, "final_conv.bias", path)?,
        };
        if weights.stft.dims() != [258, 1, 256] {
            return Err(VoiceError::BadModel {
                path: path.to_owned(),
                reason: format!(
                    "stft_conv.weight has shape {:?}, expected [258, 1, 256]",
                    weights.stft.dims()
                ),
            });
        }
        let zeros = Tensor::zeros((1, HIDDEN), candle_core::DType::F32, &device)
            .map_err(VoiceError::candle("allocating the LSTM state"))?;
        Ok(Self {
            weights,
            context: vec![0.0; CONTEXT],
            h: zeros.clone(),
            c: zeros,
        })
    }

    fn forward(&mut self, window: &[i16]) -> candle_core::Result<f32> {
        let mut x = Vec::with_capacity(CONTEXT + WINDOW + PAD);
        x.extend_from_slice(&self.context);
        x.extend(window.iter().map(|&s| i16_to_f32(s)));
        let n = x.len();
        for i in 0..PAD {
            x.push(x[n - 2 - i]);
        }
        self.context.copy_from_slice(&x[n - CONTEXT..n]);
        let w = &self.weights;
        let len = x.len();
        let input = Tensor::from_vec(x, (1, 1, len), &Device::Cpu)?;
        let spec = input.conv1d(&w.stft, 0, 128, 1, 1)?;
        let re = spec.narrow(1, 0, 129)?;
        let im = spec.narrow(1, 129, 129)?;
        let mut y = (re.sqr()? + im.sqr()?)?.sqrt()?;
        for (weight, bias, stride) in &w.convs {
            y = y
                .conv1d(weight, 1, *stride, 1, 1)?
                .broadcast_add(&bias.reshape((1, (), 1))?)?
                .relu()?;
        }
        // [1, 128, 1] → [1, 128]
        let x = y.squeeze(D::Minus1)?;
        let gates = x
            .matmul(&w.w_ih)?
            .add(&self.h.matmul(&w.w_hh)?)?
            .broadcast_add(&w.bias)?;
        let chunks = gates.chunk(4, 1)?;
        let i = candle_nn::ops::sigmoid(&chunks[0])?;
        let f = candle_nn::ops::sigmoid(&chunks[1])?;
        let g = chunks[2].tanh()?;
        let o = candle_nn::ops::sigmoid(&chunks[3])?;
        let c = ((f * &self.c)? + (i * g)?)?;
        let h = (o * c.tanh()?)?;
        self.c = c;
        self.h = h.clone();
        let logit = h
            .relu()?
            .broadcast_mul(&w.final_w)?
            .sum_keepdim(1)?
            .broadcast_add(&w.final_b.reshape((1, 1))?)?;
        candle_nn::ops::sigmoid(&logit)?
            .flatten_all()?
            .to_vec1::<f32>()
            .map(|v| v[0])
    }
}

impl Vad for SileroVad {
    fn name(&self) -> &str {
        "silero-vad"
    }

    fn sample_rate(&self) -> u32 {
        16_000
    }

    fn window(&self) -> usize {
        WINDOW
    }

    fn probability(&mut self, window: &[i16]) -> Result<f32> {
        if window.len() != WINDOW {
            return Err(VoiceError::Format(format!(
                "Silero VAD takes {WINDOW} samples per window, got {}",
                window.len()
            )));
        }
        self.forward(window)
            .map_err(VoiceError::candle("running Silero VAD"))
    }

    fn reset(&mut self) {
        self.context.fill(0.0);
        if let (Ok(h), Ok(c)) = (self.h.zeros_like(), self.c.zeros_like()) {
            self.h = h;
            self.c = c;
        }
    }
}
