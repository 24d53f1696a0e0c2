//! The mel filter bank Whisper's log-mel spectrogram uses, computed here rather than
//! shipped: librosa's `filters.mel(sr=16000, n_fft=400, n_mels=80)` with its defaults —
//! the Slaney mel scale (linear below 1 kHz, logarithmic above) and Slaney area
//! normalisation — which is how OpenAI made Whisper's `mel_filters.npz`.

/// Hz → mel on the Slaney scale.
pub fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

/// Mel → Hz on the Slaney scale.
pub fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * F_SP
    }
}

/// The filter bank: `n_mels` rows of `n_fft / 2 + 1` weights, row-major (the layout
/// `candle_transformers::models::whisper::audio::pcm_to_mel` takes).
///
/// ```
/// let filters = agentbus_voice::stt::mel::filter_bank(16_000, 400, 80);
/// assert_eq!(filters.len(), 80 * 201);
/// ```
pub fn filter_bank(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let nyquist = f64::from(sample_rate) / 2.0;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|i| i as f64 * nyquist / (bins - 1) as f64)
        .collect();
    let (low, high) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let mel_points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(low + (high - low) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let (left, centre, right) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
        let norm = 2.0 / (right - left);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            let w = lower.min(upper).max(0.0);
            weights[m * bins + k] = (w * norm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trips_and_is_linear_below_1khz() {
        for hz in [0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-9);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-9);
    }

    #[test]
    fn filters_are_normalised_triangles_covering_the_band() {
        let bins = 201;
        let filters = filter_bank(16_000, 400, 80);
        for m in 0..80 {
            let row = &filters[m * bins..(m + 1) * bins];
            assert!(row.iter().all(|&w| w >= 0.0));
            let nonzero: Vec<usize> = (0..bins).filter(|&k| row[k] > 0.0).collect();
            assert!(!nonzero.is_empty(), "filter {m} is empty");
            // Contiguous support (a triangle).
            assert_eq!(nonzero.last().unwrap() - nonzero[0] + 1, nonzero.len());
        }
        // Slaney normalisation, as in Whisper's mel_filters.npz: filters[0, 1] = 0.02486259
        // (the first triangle spans 0..74.5 Hz; bin 1 is 40 Hz).
        assert!((filters[1] - 0.024_862_59).abs() < 1e-6, "{}", filters[1]);
        // The last filter reaches up to the top of the band.
        assert!(filters[79 * bins + 199] > 0.0);
    }
}
