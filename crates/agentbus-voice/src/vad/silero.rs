//! [`SileroVad`]: the Silero VAD network (MIT, snakers4/silero-vad) from the 16 kHz
//! safetensors file its own PyPI wheel ships (read with candle, run in plain loops).
//!
//! The network, per 512-sample window (32 ms at 16 kHz) with the previous 64 samples as
//! context: reflect-pad by 64 → a learned STFT (a 256-tap convolution, stride 128, real
//! and imaginary halves) → magnitude → four 1-D convolutions with ReLU → an LSTM cell
//! (state carried between windows) → ReLU → a 1×1 convolution → sigmoid, averaged.

use std::collections::HashMap;
use std::path::Path;

use agentbus_local::ModelSpec;
use candle_core::{Device, Tensor};

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

/// The Silero voice activity detector (16 kHz, 512-sample windows).
///
/// The weights are read with candle; the forward pass is plain Rust loops (checked against
/// candle's tensor operations by a test). candle splits its products over every core, and
/// for tensors this small the hand-offs cost more than the work: on 2 cores `bench voice`
/// measured 354–532 µs a window with candle (136 µs with candle on one thread: but candle's
/// thread count is process-wide, and Whisper needs both cores), 220–374 µs with the loops
/// when each three-tap convolution output was many short dot products, and 169 µs since
/// each is one long dot product over an im2col column, on a machine shared with other
/// work.
pub struct SileroVad {
    net: Net,
    context: Vec<f32>,
    h: Vec<f32>,
    c: Vec<f32>,
}

/// A 1-D convolution: weights `[out][in][k]`, one bias per output channel.
struct Conv {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
    taps: usize,
    stride: usize,
    padding: usize,
}

impl Conv {
    fn from_tensors(
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> candle_core::Result<Self> {
        let (outputs, inputs, taps) = weight.dims3()?;
        let bias = match bias {
            Some(bias) => bias.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0; outputs],
        };
        if bias.len() != outputs {
            candle_core::bail!("a bias of {} values for {outputs} channels", bias.len());
        }
        Ok(Self {
            weight: weight.flatten_all()?.to_vec1::<f32>()?,
            bias,
            inputs,
            outputs,
            taps,
            stride,
            padding,
        })
    }

    /// `x` (`[inputs][len]`) convolved into `out` (`[outputs][len_out]`); returns
    /// `len_out`.
    ///
    /// Each output position gathers its window of every input channel into one column
    /// (`[inputs][taps]`, zeros for the padding), laid out as a weight row is, so each
    /// output is one long dot product the compiler vectorises. Three-tap kernels as
    /// `inputs` dot products of three were scalar, and most of a window's time.
    fn apply(&self, x: &[f32], len: usize, out: &mut Vec<f32>, column: &mut Vec<f32>) -> usize {
        let padded = len + 2 * self.padding;
        let len_out = if padded < self.taps {
            0
        } else {
            (padded - self.taps) / self.stride + 1
        };
        out.clear();
        out.resize(self.outputs * len_out, 0.0);
        let row = self.inputs * self.taps;
        column.clear();
        column.resize(row, 0.0);
        for t in 0..len_out {
            let start = t * self.stride;
            for c in 0..self.inputs {
                let input = &x[c * len..][..len];
                for (k, slot) in column[c * self.taps..][..self.taps].iter_mut().enumerate() {
                    // `start + k` is a position in the padded input.
                    *slot = (start + k)
                        .checked_sub(self.padding)
                        .and_then(|i| input.get(i))
                        .copied()
                        .unwrap_or(0.0);
                }
            }
            for o in 0..self.outputs {
                out[o * len_out + t] = self.bias[o] + dot(&self.weight[o * row..][..row], column);
            }
        }
        len_out
    }
}

/// The network's weights as plain arrays.
struct Net {
    stft: Conv,
    convs: Vec<Conv>,
    /// `[4 * HIDDEN][HIDDEN]`, gates in the order input, forget, cell, output.
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    bias: Vec<f32>,
    final_w: Vec<f32>,
    final_b: f32,
}

/// `a · b` over eight lanes, so the compiler vectorises it (a plain `sum` must add in
/// order and does not).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
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
    /// installs; see [`crate::models`]). A file whose tensors are missing or do not fit
    /// together is an error.
    pub fn load(path: &Path) -> Result<Self> {
        let mut t = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(VoiceError::candle(format!("reading {}", path.display())))?;
        let bad = |reason: String| VoiceError::BadModel {
            path: path.to_owned(),
            reason: format!("not the Silero VAD 16 kHz network: {reason}"),
        };
        let candle = |e: candle_core::Error| bad(e.to_string());
        let flat = |t: Tensor| t.flatten_all().and_then(|t| t.to_vec1::<f32>());
        let stft = Conv::from_tensors(&take(&mut t, "stft_conv.weight", path)?, None, 128, 0)
            .map_err(candle)?;
        if (stft.outputs, stft.inputs, stft.taps) != (258, 1, 256) {
            return Err(bad(format!(
                "stft_conv.weight is [{}, {}, {}], expected [258, 1, 256]",
                stft.outputs, stft.inputs, stft.taps
            )));
        }
        let mut convs = Vec::new();
        let mut channels = 129;
        for (i, stride) in [(1, 1), (2, 2), (3, 2), (4, 1)] {
            let weight = take(&mut t, &format!("conv{i}.weight"), path)?;
            let bias = take(&mut t, &format!("conv{i}.bias"), path)?;
            let conv = Conv::from_tensors(&weight, Some(&bias), stride, 1).map_err(candle)?;
            if conv.inputs != channels {
                return Err(bad(format!(
                    "conv{i} takes {} channels, the layer before gives {channels}",
                    conv.inputs
                )));
            }
            channels = conv.outputs;
            convs.push(conv);
        }
        let w_ih = flat(take(&mut t, "lstm_cell.weight_ih", path)?).map_err(candle)?;
        let w_hh = flat(take(&mut t, "lstm_cell.weight_hh", path)?).map_err(candle)?;
        let bias_ih = flat(take(&mut t, "lstm_cell.bias_ih", path)?).map_err(candle)?;
        let bias_hh = flat(take(&mut t, "lstm_cell.bias_hh", path)?).map_err(candle)?;
        let final_w = flat(take(&mut t, "final_conv.weight", path)?).map_err(candle)?;
        let final_b = flat(take(&mut t, "final_conv.bias", path)?).map_err(candle)?;
        let gates = 4 * HIDDEN;
        if channels != HIDDEN
            || w_ih.len() != gates * HIDDEN
            || w_hh.len() != gates * HIDDEN
            || bias_ih.len() != gates
            || bias_hh.len() != gates
            || final_w.len() != HIDDEN
            || final_b.len() != 1
        {
            return Err(bad("the LSTM or the final layer has the wrong size".into()));
        }
        let bias = bias_ih.iter().zip(&bias_hh).map(|(a, b)| a + b).collect();
        Ok(Self {
            net: Net {
                stft,
                convs,
                w_ih,
                w_hh,
                bias,
                final_w,
                final_b: final_b[0],
            },
            context: vec![0.0; CONTEXT],
            h: vec![0.0; HIDDEN],
            c: vec![0.0; HIDDEN],
        })
    }

    fn forward(&mut self, window: &[i16]) -> f32 {
        let mut x = Vec::with_capacity(CONTEXT + WINDOW + PAD);
        x.extend_from_slice(&self.context);
        x.extend(window.iter().map(|&s| i16_to_f32(s)));
        let n = x.len();
        // Reflection padding on the right.
        for i in 0..PAD {
            x.push(x[n - 2 - i]);
        }
        self.context.copy_from_slice(&x[n - CONTEXT..n]);
        let net = &self.net;
        let (mut a, mut b, mut column) = (Vec::new(), Vec::new(), Vec::new());
        let frames = net.stft.apply(&x, x.len(), &mut a, &mut column);
        // Magnitude of the 129 bins: real parts are the first half, imaginary the second.
        let bins = net.stft.outputs / 2;
        b.clear();
        b.extend((0..bins * frames).map(|i| {
            let (re, im) = (a[i], a[bins * frames + i]);
            (re * re + im * im).sqrt()
        }));
        let mut len = frames;
        for conv in &net.convs {
            len = conv.apply(&b, len, &mut a, &mut column);
            a.iter_mut().for_each(|v| *v = v.max(0.0));
            std::mem::swap(&mut a, &mut b);
        }
        // [HIDDEN][1]: the encoder's one output frame.
        let input = &b[..HIDDEN.min(b.len())];
        let mut gates = net.bias.clone();
        for (g, gate) in gates.iter_mut().enumerate() {
            let wi = &net.w_ih[g * HIDDEN..][..HIDDEN];
            let wh = &net.w_hh[g * HIDDEN..][..HIDDEN];
            *gate += dot(wi, input) + dot(wh, &self.h);
        }
        let mut logit = net.final_b;
        for j in 0..HIDDEN {
            let i = sigmoid(gates[j]);
            let f = sigmoid(gates[HIDDEN + j]);
            let g = gates[2 * HIDDEN + j].tanh();
            let o = sigmoid(gates[3 * HIDDEN + j]);
            self.c[j] = f * self.c[j] + i * g;
            self.h[j] = o * self.c[j].tanh();
            logit += self.h[j].max(0.0) * net.final_w[j];
        }
        sigmoid(logit)
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
        Ok(self.forward(window))
    }

    fn reset(&mut self) {
        self.context.fill(0.0);
        self.h.fill(0.0);
        self.c.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;

    /// The network as candle tensor operations (the first implementation), to check the
    /// loops against.
    struct Reference {
        t: HashMap<String, Tensor>,
        context: Vec<f32>,
        h: Tensor,
        c: Tensor,
    }

    impl Reference {
        fn forward(&mut self, window: &[i16]) -> candle_core::Result<f32> {
            let t = &self.t;
            let mut x = self.context.clone();
            x.extend(window.iter().map(|&s| i16_to_f32(s)));
            let n = x.len();
            for i in 0..PAD {
                x.push(x[n - 2 - i]);
            }
            self.context.copy_from_slice(&x[n - CONTEXT..n]);
            let len = x.len();
            let input = Tensor::from_vec(x, (1, 1, len), &Device::Cpu)?;
            let spec = input.conv1d(&t["stft_conv.weight"], 0, 128, 1, 1)?;
            let (re, im) = (spec.narrow(1, 0, 129)?, spec.narrow(1, 129, 129)?);
            let mut y = (re.sqr()? + im.sqr()?)?.sqrt()?;
            for (i, stride) in [(1, 1), (2, 2), (3, 2), (4, 1)] {
                y = y
                    .conv1d(&t[&format!("conv{i}.weight")], 1, stride, 1, 1)?
                    .broadcast_add(&t[&format!("conv{i}.bias")].reshape((1, (), 1))?)?
                    .relu()?;
            }
            let x = y.squeeze(D::Minus1)?;
            let gates = x
                .matmul(&t["lstm_cell.weight_ih"].t()?)?
                .add(&self.h.matmul(&t["lstm_cell.weight_hh"].t()?)?)?
                .broadcast_add(&t["lstm_cell.bias_ih"].add(&t["lstm_cell.bias_hh"])?)?;
            let chunks = gates.chunk(4, 1)?;
            let i = candle_nn::ops::sigmoid(&chunks[0])?;
            let f = candle_nn::ops::sigmoid(&chunks[1])?;
            let g = chunks[2].tanh()?;
            let o = candle_nn::ops::sigmoid(&chunks[3])?;
            self.c = ((f * &self.c)? + (i * g)?)?;
            self.h = (o * self.c.tanh()?)?;
            let logit = self
                .h
                .relu()?
                .broadcast_mul(&t["final_conv.weight"].reshape((1, HIDDEN))?)?
                .sum_keepdim(1)?
                .broadcast_add(&t["final_conv.bias"].reshape((1, 1))?)?;
            candle_nn::ops::sigmoid(&logit)?
                .flatten_all()?
                .to_vec1::<f32>()
                .map(|v| v[0])
        }
    }

    /// The loops give candle's probabilities on two seconds of tones and noise (the model
    /// file comes from `agentbus model pull silero-vad`, which CI runs first).
    #[test]
    fn the_loops_match_the_tensor_reference() {
        let dir = agentbus_local::ModelDir::from_env().unwrap();
        let path = dir.model_path(&SILERO_VAD);
        let probe = if path.exists() {
            Ok(())
        } else {
            Err(format!("{} is missing", path.display()))
        };
        // Skipped with a note on a developer's machine; a failure in CI.
        if !agentbus_test_support::services::available(
            "the Silero VAD model",
            probe,
            "run `agentbus model pull silero-vad`",
        ) {
            return;
        }
        let mut vad = SileroVad::load(&path).unwrap();
        let zeros = Tensor::zeros((1, HIDDEN), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut reference = Reference {
            t: candle_core::safetensors::load(&path, &Device::Cpu).unwrap(),
            context: vec![0.0; CONTEXT],
            h: zeros.clone(),
            c: zeros,
        };
        let mut seed = 7u32;
        let signal: Vec<i16> = (0..16_000 * 2)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 16) as f32 / 65_536.0 - 0.5;
                let t = i as f32 / 16_000.0;
                let voiced = if (0.5..1.4).contains(&t) { 0.3 } else { 0.0 };
                let tone = (t * 2.0 * std::f32::consts::PI * (150.0 + 80.0 * t)).sin();
                ((voiced * tone + 0.02 * noise) * 32_767.0) as i16
            })
            .collect();
        for window in signal.chunks_exact(WINDOW) {
            let ours = vad.forward(window);
            let theirs = reference.forward(window).unwrap();
            assert!((ours - theirs).abs() < 1e-4, "{ours} vs {theirs}");
        }
    }
}
