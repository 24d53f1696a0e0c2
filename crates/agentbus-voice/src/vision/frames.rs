//! Where frames come from, and how they go out: a directory of PNG/JPEG images, a video
//! file (decoded by the `ffmpeg` program into such images), and JPEG encoding for the
//! VLM's `image_url`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::VideoFrame;
use crate::error::{Result, VoiceError};

/// The largest image side read, in pixels (a bound on memory: 8192² RGB is 192 MiB).
pub const MAX_SIDE: u32 = 8192;

fn image_error(path: &Path, reason: impl std::fmt::Display) -> VoiceError {
    VoiceError::Format(format!("{}: {reason}", path.display()))
}

/// Reads one PNG or JPEG image as a frame at `timestamp`.
pub fn read_image(path: &Path, timestamp: Duration) -> Result<VideoFrame> {
    let reader = image::ImageReader::open(path)
        .map_err(VoiceError::io(format!("opening {}", path.display())))?
        .with_guessed_format()
        .map_err(VoiceError::io(format!("reading {}", path.display())))?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|error| image_error(path, error))?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(image_error(
            path,
            format!("{width}x{height} is larger than {MAX_SIDE} pixels a side"),
        ));
    }
    let decoded = image::ImageReader::open(path)
        .map_err(VoiceError::io(format!("opening {}", path.display())))?
        .with_guessed_format()
        .map_err(VoiceError::io(format!("reading {}", path.display())))?
        .decode()
        .map_err(|error| image_error(path, error))?
        .into_rgb8();
    let (width, height) = decoded.dimensions();
    VideoFrame::new(width, height, decoded.into_raw(), timestamp)
}

/// The PNG and JPEG files of `dir`, sorted by name, as frames `interval` apart. A
/// directory with no image is an error.
pub fn read_dir(dir: &Path, interval: Duration) -> Result<Vec<VideoFrame>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(VoiceError::io(format!("listing {}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(VoiceError::Format(format!(
            "{}: no PNG or JPEG images",
            dir.display()
        )));
    }
    paths
        .iter()
        .enumerate()
        .map(|(i, path)| read_image(path, interval * i as u32))
        .collect()
}

/// The frames of the video file `path`, `rate` per second, decoded by `ffmpeg` (Debian's
/// `ffmpeg` package) into a temporary directory of PNG images.
pub async fn read_video(path: &Path, rate: f64) -> Result<Vec<VideoFrame>> {
    if !(rate.is_finite() && rate > 0.0 && rate <= 120.0) {
        return Err(VoiceError::Format(format!(
            "a frame rate of {rate} per second: give one in (0, 120]"
        )));
    }
    if !path.is_file() {
        return Err(VoiceError::Format(format!(
            "{}: no such file",
            path.display()
        )));
    }
    let scratch = tempfile::tempdir().map_err(VoiceError::io("creating a scratch directory"))?;
    let output = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("fps={rate}"), "-f", "image2"])
        .arg(scratch.path().join("frame-%06d.png"))
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| VoiceError::Program {
            program: "ffmpeg".into(),
            reason: format!("{error} (install it: apt-get install ffmpeg)"),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(VoiceError::Program {
            program: "ffmpeg".into(),
            reason: format!(
                "could not decode {}: {}",
                path.display(),
                stderr.trim().chars().take(300).collect::<String>()
            ),
        });
    }
    read_dir(scratch.path(), Duration::from_secs_f64(1.0 / rate))
}

/// `frame` as a JPEG (quality 85), for sending to a VLM.
pub fn encode_jpeg(frame: &VideoFrame) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode(
            &frame.rgb,
            frame.width,
            frame.height,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|error| VoiceError::Format(format!("encoding a JPEG: {error}")))?;
    Ok(out)
}

/// Up to `count` frames of `frames`, evenly spaced, the last one included (what a VLM is
/// shown of a clip).
pub fn sample(frames: &[VideoFrame], count: usize) -> Vec<VideoFrame> {
    if count == 0 || frames.is_empty() {
        return Vec::new();
    }
    if frames.len() <= count {
        return frames.to_vec();
    }
    (0..count)
        .map(|i| {
            let at = if count == 1 {
                frames.len() - 1
            } else {
                i * (frames.len() - 1) / (count - 1)
            };
            frames[at].clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let frame = VideoFrame::new(
            4,
            2,
            (0..24).map(|i| i as u8 * 10).collect(),
            Duration::ZERO,
        )
        .unwrap();
        image::RgbImage::from_raw(4, 2, frame.rgb.clone())
            .unwrap()
            .save(dir.path().join("b.png"))
            .unwrap();
        std::fs::write(dir.path().join("a.jpg"), encode_jpeg(&frame).unwrap()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let frames = read_dir(dir.path(), Duration::from_millis(500)).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].rgb, frame.rgb, "PNG is lossless");
        assert_eq!(frames[1].timestamp, Duration::from_millis(500));
        assert_eq!((frames[0].width, frames[0].height), (4, 2));

        std::fs::write(dir.path().join("c.png"), "garbage").unwrap();
        let error = read_dir(dir.path(), Duration::ZERO).unwrap_err();
        assert!(error.to_string().contains("c.png"), "{error}");
        let empty = tempfile::tempdir().unwrap();
        assert!(read_dir(empty.path(), Duration::ZERO).is_err());
    }

    #[test]
    fn sampling_is_even_and_keeps_the_last_frame() {
        let frames: Vec<VideoFrame> = (0..10)
            .map(|i| VideoFrame::new(1, 1, vec![i; 3], Duration::ZERO).unwrap())
            .collect();
        let picked: Vec<u8> = sample(&frames, 4).iter().map(|f| f.rgb[0]).collect();
        assert_eq!(picked, vec![0, 3, 6, 9]);
        assert_eq!(sample(&frames, 1)[0].rgb[0], 9);
        assert_eq!(sample(&frames[..2], 4).len(), 2);
        assert!(sample(&frames, 0).is_empty());
    }
}
