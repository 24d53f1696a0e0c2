//! [`MotionDetector`]: a video processor that needs no model. Each frame is shrunk to a
//! small grey thumbnail (block averages, which also smooths sensor noise) and compared with
//! the previous one; the cells whose brightness moved by more than a threshold are the
//! motion. A few changed cells are `motion` (with the box around them); most of the
//! picture changing at once is a `scene_change` (a cut, a camera switch, lights).

use super::{Detection, VideoFrame, VideoProcessor};
use crate::error::Result;

/// How the detector decides.
#[derive(Clone, Debug, PartialEq)]
pub struct MotionConfig {
    /// Thumbnail width in cells (the height follows the frame's aspect ratio).
    pub cells_wide: u32,
    /// A cell has changed when its mean brightness moved by more than this (0–255).
    pub threshold: u8,
    /// Motion is reported when at least this share of cells changed.
    pub min_area: f32,
    /// A scene change is reported instead when at least this share changed.
    pub scene_change: f32,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            cells_wide: 64,
            threshold: 24,
            min_area: 0.005,
            scene_change: 0.6,
        }
    }
}

/// Frame differencing; see the [module](self) docs.
///
/// ```
/// use std::time::Duration;
/// use agentbus_voice::vision::{MotionDetector, VideoFrame, VideoProcessor};
///
/// let mut detector = MotionDetector::default();
/// let dark = VideoFrame::new(64, 48, vec![0; 64 * 48 * 3], Duration::ZERO)?;
/// let mut lit = vec![0; 64 * 48 * 3];
/// for y in 10..20 {
///     for x in 30..40 {
///         lit[(y * 64 + x) * 3..][..3].copy_from_slice(&[255, 255, 255]);
///     }
/// }
/// let lit = VideoFrame::new(64, 48, lit, Duration::from_millis(40))?;
/// assert!(detector.process(&dark)?.is_empty()); // the first frame has nothing to compare with
/// let found = detector.process(&lit)?;
/// assert_eq!(found[0].label, "motion");
/// assert_eq!(found[0].bbox, Some([30, 10, 10, 10]));
/// # Ok::<(), agentbus_voice::VoiceError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MotionDetector {
    config: MotionConfig,
    previous: Option<Thumbnail>,
}

#[derive(Clone, Debug)]
struct Thumbnail {
    width: u32,
    height: u32,
    /// The frame's size, to scale boxes back to pixels.
    frame: (u32, u32),
    cells: Vec<u8>,
}

impl MotionDetector {
    /// A detector with `config`.
    pub fn new(config: MotionConfig) -> Self {
        Self {
            config,
            previous: None,
        }
    }
}

fn thumbnail(frame: &VideoFrame, cells_wide: u32) -> Thumbnail {
    let width = cells_wide.clamp(1, frame.width.max(1));
    let height = ((u64::from(frame.height) * u64::from(width)) / u64::from(frame.width.max(1)))
        .clamp(1, u64::from(frame.height.max(1))) as u32;
    let mut sums = vec![0u64; (width * height) as usize];
    let mut counts = vec![0u64; (width * height) as usize];
    for y in 0..frame.height {
        let cy = (u64::from(y) * u64::from(height) / u64::from(frame.height)) as u32;
        for x in 0..frame.width {
            let cx = (u64::from(x) * u64::from(width) / u64::from(frame.width)) as u32;
            let at = ((y * frame.width + x) * 3) as usize;
            let [r, g, b] = [frame.rgb[at], frame.rgb[at + 1], frame.rgb[at + 2]];
            // Rec. 601 luma, in integers.
            let luma = (299 * u64::from(r) + 587 * u64::from(g) + 114 * u64::from(b)) / 1000;
            let cell = (cy * width + cx) as usize;
            sums[cell] += luma;
            counts[cell] += 1;
        }
    }
    let cells = sums
        .iter()
        .zip(&counts)
        .map(|(&sum, &count)| (sum / count.max(1)) as u8)
        .collect();
    Thumbnail {
        width,
        height,
        frame: (frame.width, frame.height),
        cells,
    }
}

impl VideoProcessor for MotionDetector {
    fn name(&self) -> &str {
        "motion-detector"
    }

    fn process(&mut self, frame: &VideoFrame) -> Result<Vec<Detection>> {
        if frame.width == 0 || frame.height == 0 {
            return Ok(Vec::new());
        }
        let current = thumbnail(frame, self.config.cells_wide);
        let Some(previous) = self.previous.replace(current.clone()) else {
            return Ok(Vec::new());
        };
        // A new size is a new stream: nothing to compare with.
        if (previous.width, previous.height, previous.frame)
            != (current.width, current.height, current.frame)
        {
            return Ok(Vec::new());
        }
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        let mut changed = 0usize;
        for (i, (&a, &b)) in previous.cells.iter().zip(&current.cells).enumerate() {
            if a.abs_diff(b) > self.config.threshold {
                changed += 1;
                let (x, y) = (i as u32 % current.width, i as u32 / current.width);
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
        let share = changed as f32 / current.cells.len() as f32;
        if changed == 0 || share < self.config.min_area {
            return Ok(Vec::new());
        }
        if share >= self.config.scene_change {
            return Ok(vec![Detection {
                label: "scene_change".into(),
                score: share,
                bbox: None,
            }]);
        }
        // The changed cells' box, in the frame's pixels.
        let (fw, fh) = current.frame;
        let px = |cell: u32, cells: u32, size: u32| {
            (u64::from(cell) * u64::from(size)).div_ceil(u64::from(cells)) as u32
        };
        let (left, top) = (px(x0, current.width, fw), px(y0, current.height, fh));
        let (right, bottom) = (
            px(x1 + 1, current.width, fw).min(fw),
            px(y1 + 1, current.height, fh).min(fh),
        );
        Ok(vec![Detection {
            label: "motion".into(),
            score: (share / self.config.scene_change).min(1.0),
            bbox: Some([left, top, right - left, bottom - top]),
        }])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frame(width: u32, height: u32, square: Option<(u32, u32, u32)>, grey: u8) -> VideoFrame {
        let mut rgb = vec![grey; (width * height * 3) as usize];
        if let Some((sx, sy, size)) = square {
            for y in sy..sy + size {
                for x in sx..sx + size {
                    let at = ((y * width + x) * 3) as usize;
                    rgb[at..at + 3].copy_from_slice(&[250, 250, 250]);
                }
            }
        }
        VideoFrame::new(width, height, rgb, Duration::ZERO).unwrap()
    }

    #[test]
    fn a_moving_square_is_motion_in_its_box_and_a_cut_is_a_scene_change() {
        let mut detector = MotionDetector::default();
        let (w, h) = (320, 240);
        assert!(
            detector
                .process(&frame(w, h, Some((20, 20, 40)), 10))
                .unwrap()
                .is_empty()
        );
        // Still: nothing.
        assert!(
            detector
                .process(&frame(w, h, Some((20, 20, 40)), 10))
                .unwrap()
                .is_empty()
        );
        // The square moves right by 100 px: the box covers where it was and where it is.
        let found = detector
            .process(&frame(w, h, Some((120, 20, 40)), 10))
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].label, "motion");
        let [x, y, bw, bh] = found[0].bbox.unwrap();
        assert!(x <= 20 && x + bw >= 160, "{:?}", found[0].bbox);
        assert!(y <= 20 && y + bh >= 60 && bh < 80, "{:?}", found[0].bbox);
        // Everything brightens: a scene change.
        let found = detector.process(&frame(w, h, None, 200)).unwrap();
        assert_eq!(found[0].label, "scene_change");
        // Sensor noise below the threshold is not motion.
        let mut noisy = frame(w, h, None, 200);
        for (i, value) in noisy.rgb.iter_mut().enumerate() {
            *value = value.wrapping_add((i % 7) as u8);
        }
        assert!(detector.process(&noisy).unwrap().is_empty());
    }

    #[test]
    fn tiny_and_resized_frames_do_not_panic() {
        let mut detector = MotionDetector::default();
        for (w, h) in [(1, 1), (3, 200), (200, 3), (1, 1), (0, 0)] {
            let frame =
                VideoFrame::new(w, h, vec![7; (w * h * 3) as usize], Duration::ZERO).unwrap();
            assert!(detector.process(&frame).unwrap().is_empty());
        }
    }
}
