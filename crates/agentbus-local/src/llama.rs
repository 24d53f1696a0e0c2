//! The transformer forward pass of the embedded model: a Llama-architecture GGUF on the
//! CPU, with candle's tensors and kernels.
//!
//! candle-transformers has a quantised Llama (`quantized_llama`), which this replaces for
//! two reasons:
//!
//! - **Its KV cache is private.** A prefix cache that survives the process
//!   ([`crate::prefix_cache`]) must read the cache out and put it back; here it is a
//!   value, [`KvCache`], that the caller owns.
//! - **Prompts went through the single-row kernel.** candle multiplies a batch of prompt
//!   rows by Q8_0 weights with its vec-dot kernel (AVX2, chosen at run time) unless the
//!   inner dimension is a multiple of 256, which SmolLM2's 576-wide layers are not; that
//!   ran at ~33 GFLOP/s on this 2-core machine, against ~180 GFLOP/s for candle's f32
//!   matrix product (the `gemm` crate, which picks AVX2/FMA or AVX-512 at run time, so the
//!   binary still runs on any x86-64). A batch of [`BATCH_ROWS`] rows or more is therefore
//!   multiplied by an f32 copy of the weights, dequantised once at load; fewer rows (and
//!   generation, one row) keep the Q8_0 kernel, which reads a quarter of the bytes. The
//!   copy costs 425 MB of memory. Measured and rejected: dequantising per product instead
//!   (330–400 prompt tokens/s against 450–600 on an 800-token prompt: the fresh buffers
//!   and the transposed operand cost more than the 55 ms the dequantisation itself
//!   takes), an f16 copy (gemm's f16 kernels: 290–330 tokens/s), and leaving the down
//!   projections (inner dimension 1536) to candle's int8 VNNI kernel, which is faster
//!   there and saves 106 MB but quantises the activations: the 135M model's greedy
//!   answer to "What is the capital of France?" then turned from Paris to "L'Étoile, …".
//!
//! Everything else is the standard Llama block: RMS norm, rotary position embedding
//! (interleaved pairs, the GGUF convention for Llama), grouped-query attention with a
//! causal mask, and a SiLU-gated MLP. A test checks the logits against candle's
//! `quantized_llama` on the same weights.

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{QMatMul, gguf_file};
use candle_core::{DType, Device, IndexOp, Module, Tensor};

/// From this many rows on, a matrix product uses the f32 weights (see the module docs).
/// Every prompt pass of two tokens or more does, so a prompt gives the same logits whether
/// its prefix came from the cache or not (the Q8_0 kernel quantises the activations too,
/// which moves the logits enough to change a greedy answer); only generation, one row at
/// a time, uses the Q8_0 kernel.
pub const BATCH_ROWS: usize = 2;

/// The most positions a conversation may hold, whatever the model was trained for: the
/// attention scores of a prompt chunk take `heads × chunk × positions` floats.
pub const MAX_CONTEXT: usize = 4096;

/// A long prompt is fed this many tokens at a time, which bounds the attention scores'
/// memory (`heads × PREFILL_CHUNK × positions` floats: 9 × 512 × 4096 × 4 B = 75 MB for
/// SmolLM2) at no cost in speed.
pub const PREFILL_CHUNK: usize = 512;

/// The attention keys and values of every position processed so far, per layer.
///
/// Cloning is cheap (the tensors are shared, and never written in place: each new
/// position makes new tensors), so a cache can be kept as a snapshot and resumed later.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// How many positions the cache holds.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(Option::as_ref)
            .and_then(|(k, _)| k.dims().get(2).copied())
            .unwrap_or(0)
    }

    /// Whether the cache holds no position.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys and values of each layer (`[1, kv_heads, positions, head_dim]`, f32).
    pub fn layers(&self) -> &[Option<(Tensor, Tensor)>] {
        &self.layers
    }

    /// A cache made of `layers`, as [`Self::layers`] returned them.
    pub fn from_layers(layers: Vec<Option<(Tensor, Tensor)>>) -> Self {
        Self { layers }
    }
}

/// The shape of the model, from the GGUF metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Width of each head.
    pub head_dim: usize,
    /// Width of the hidden state.
    pub hidden: usize,
    /// Positions a conversation may hold: what the model was trained for, at most
    /// [`MAX_CONTEXT`].
    pub context: usize,
}

/// A weight matrix: Q8_0 for a few rows, f32 for a batch (see the module docs).
#[derive(Debug)]
struct Linear {
    /// `[in, out]`, contiguous: the transposed weight, ready for `x · w`.
    dense_t: Tensor,
    quantized: QMatMul,
}

impl Linear {
    fn load<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        name: &str,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let weight = Arc::new(content.tensor(reader, name, device)?);
        let dense_t = weight.dequantize(device)?.t()?.contiguous()?;
        Ok(Self {
            quantized: QMatMul::from_arc(weight)?,
            dense_t,
        })
    }

    /// `x` is `[1, rows, in]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.dim(1)? >= BATCH_ROWS {
            x.broadcast_matmul(&self.dense_t)
        } else {
            self.quantized.forward(x)
        }
    }
}

#[derive(Debug)]
struct Block {
    attention_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    mlp_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The model's weights and the constants of its forward pass.
#[derive(Debug)]
pub struct Llama {
    shape: Shape,
    eps: f64,
    embeddings: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    /// The output projection: single rows only (the logits of the last position).
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

impl Llama {
    /// Reads the weights named in `content` from `reader`.
    pub fn from_gguf<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let number = |key: &str| -> candle_core::Result<usize> {
            match content.metadata.get(key) {
                Some(value) => Ok(value.to_u32()? as usize),
                None => candle_core::bail!("the GGUF metadata has no {key}"),
            }
        };
        let heads = number("llama.attention.head_count")?;
        let hidden = number("llama.embedding_length")?;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("{hidden} hidden units do not split into {heads} heads");
        }
        let kv_heads = number("llama.attention.head_count_kv")?;
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            candle_core::bail!("{heads} heads do not share {kv_heads} key/value heads");
        }
        let shape = Shape {
            layers: number("llama.block_count")?,
            heads,
            kv_heads,
            head_dim: hidden / heads,
            hidden,
            context: number("llama.context_length")?.min(MAX_CONTEXT),
        };
        let eps = match content
            .metadata
            .get("llama.attention.layer_norm_rms_epsilon")
        {
            Some(value) => f64::from(value.to_f32()?),
            None => 1e-5,
        };
        let base = match content.metadata.get("llama.rope.freq_base") {
            Some(value) => value.to_f32()?,
            None => 10_000.0,
        };
        let (cos, sin) = rope_tables(shape.head_dim, shape.context, base, device)?;

        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let embeddings_q = tensor("token_embd.weight")?;
        let embeddings = embeddings_q.dequantize(device)?;
        let norm = tensor("output_norm.weight")?.dequantize(device)?;
        let output = match tensor("output.weight") {
            Ok(output) => output,
            // Tied embeddings: the output projection is the embedding matrix.
            Err(_) => embeddings_q,
        };
        let mut blocks = Vec::with_capacity(shape.layers);
        for layer in 0..shape.layers {
            let name = |part: &str| format!("blk.{layer}.{part}.weight");
            let linear =
                |reader: &mut R, part: &str| Linear::load(content, reader, &name(part), device);
            blocks.push(Block {
                attention_norm: content
                    .tensor(reader, &name("attn_norm"), device)?
                    .dequantize(device)?,
                q: linear(reader, "attn_q")?,
                k: linear(reader, "attn_k")?,
                v: linear(reader, "attn_v")?,
                o: linear(reader, "attn_output")?,
                mlp_norm: content
                    .tensor(reader, &name("ffn_norm"), device)?
                    .dequantize(device)?,
                gate: linear(reader, "ffn_gate")?,
                up: linear(reader, "ffn_up")?,
                down: linear(reader, "ffn_down")?,
            });
        }
        Ok(Self {
            shape,
            eps,
            embeddings,
            blocks,
            norm,
            output: QMatMul::from_qtensor(output)?,
            cos,
            sin,
            device: device.clone(),
        })
    }

    /// The model's shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Feeds `tokens` after the positions `cache` holds, extends the cache with them, and
    /// returns the logits (f32) of the token that follows the last one. A long run of
    /// tokens is fed [`PREFILL_CHUNK`] at a time.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Vec<f32>> {
        let mut logits = Vec::new();
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            logits = self.forward_chunk(chunk, cache)?;
        }
        if logits.is_empty() {
            candle_core::bail!("no tokens to feed");
        }
        Ok(logits)
    }

    fn forward_chunk(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Vec<f32>> {
        let start = cache.len();
        let rows = tokens.len();
        if rows == 0 {
            candle_core::bail!("no tokens to feed");
        }
        if start + rows > self.shape.context {
            candle_core::bail!(
                "{} positions do not fit the model's {}",
                start + rows,
                self.shape.context
            );
        }
        cache.layers.resize(self.blocks.len(), None);
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        let mask = (rows > 1)
            .then(|| causal_mask(rows, start, &self.device))
            .transpose()?;
        let cos = self.cos.narrow(0, start, rows)?;
        let sin = self.sin.narrow(0, start, rows)?;
        for (block, layer_cache) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            let normed = candle_nn::ops::rms_norm(&x, &block.attention_norm, self.eps as f32)?;
            let attended =
                self.attention(block, &normed, layer_cache, mask.as_ref(), &cos, &sin)?;
            x = (x + attended)?;
            let normed = candle_nn::ops::rms_norm(&x, &block.mlp_norm, self.eps as f32)?;
            let gated = (block.gate.forward(&normed)?.silu()? * block.up.forward(&normed)?)?;
            x = (x + block.down.forward(&gated)?)?;
        }
        let last = x.i((.., rows - 1, ..))?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, self.eps as f32)?;
        self.output
            .forward(&last)?
            .squeeze(0)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()
    }

    fn attention(
        &self,
        block: &Block,
        x: &Tensor,
        layer_cache: &mut Option<(Tensor, Tensor)>,
        mask: Option<&Tensor>,
        cos: &Tensor,
        sin: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let Shape {
            heads,
            kv_heads,
            head_dim,
            hidden,
            ..
        } = self.shape;
        let rows = x.dim(1)?;
        let split = |t: Tensor, heads: usize| -> candle_core::Result<Tensor> {
            t.reshape((1, rows, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(block.q.forward(x)?, heads)?;
        let k = split(block.k.forward(x)?, kv_heads)?;
        let v = split(block.v.forward(x)?, kv_heads)?;
        let q = candle_nn::rotary_emb::rope_i(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope_i(&k, cos, sin)?;
        let (k, v) = match layer_cache.take() {
            Some((past_k, past_v)) => (
                Tensor::cat(&[&past_k, &k], 2)?,
                Tensor::cat(&[&past_v, &v], 2)?,
            ),
            None => (k, v),
        };
        *layer_cache = Some((k.clone(), v.clone()));

        // Grouped-query attention without copying keys and values: the `group` query
        // heads that share a key/value head are stacked as one taller query
        // (`[1, kv_heads, group · rows, head_dim]`), so each key/value head is used as
        // it is.
        let group = heads / kv_heads;
        let positions = k.dim(2)?;
        let q = q.reshape((1, kv_heads, group * rows, head_dim))?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
        let scores = match mask {
            Some(mask) => scores
                .reshape((1, kv_heads, group, rows, positions))?
                .broadcast_add(mask)?
                .reshape((1, kv_heads, group * rows, positions))?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights.matmul(&v)?.reshape((1, heads, rows, head_dim))?;
        let out = out.transpose(1, 2)?.reshape((1, rows, hidden))?;
        block.o.forward(&out)
    }
}

/// The additive causal mask of `rows` new positions after `start` cached ones:
/// `[rows, start + rows]`, `-inf` where a row would see a later position.
fn causal_mask(rows: usize, start: usize, device: &Device) -> candle_core::Result<Tensor> {
    let columns = start + rows;
    let mask: Vec<f32> = (0..rows)
        .flat_map(|row| {
            (0..columns).map(move |column| {
                if column > start + row {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (rows, columns), device)
}

/// The rotary embedding's cosines and sines, `[positions, head_dim / 2]`.
fn rope_tables(
    head_dim: usize,
    positions: usize,
    base: f32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let inverse: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
        .collect();
    let half = inverse.len();
    let inverse = Tensor::from_vec(inverse, (1, half), device)?;
    let positions = Tensor::arange(0u32, positions as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((positions, 1))?;
    let angles = positions.matmul(&inverse)?;
    Ok((angles.cos()?, angles.sin()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_hides_later_positions_only() {
        let mask = causal_mask(2, 3, &Device::Cpu).unwrap();
        let rows: Vec<Vec<f32>> = mask.to_vec2().unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(rows, vec![vec![0.0, 0.0, 0.0, 0.0, inf], vec![0.0; 5]]);
    }
}
