//! Vision: a VLM run against a fake OpenAI-compatible server that checks the images
//! arrived (decoded back from the request's base64 JPEGs), its errors as events, and the
//! motion detector on generated frames — a moving square, and a video ffmpeg makes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentbus::EventManager;
use agentbus_test_support::{FakeServer, Reply};
use agentbus_voice::clock::SystemClock;
use agentbus_voice::publish::Emitter;
use agentbus_voice::vision::{
    InstrumentedVideoProcessor, InstrumentedVlm, MotionDetector, OpenAiVlm, VideoFrame, frames,
};
use base64::Engine as _;
use common::{Recorder, assert_in_order};

/// A 160x120 frame, dark, with a bright 30-pixel square at `x`.
fn square_at(x: u32, i: u32) -> VideoFrame {
    let (w, h) = (160u32, 120u32);
    let mut rgb = vec![20u8; (w * h * 3) as usize];
    for py in 40..70 {
        for px in x..x + 30 {
            let at = ((py * w + px) * 3) as usize;
            rgb[at..at + 3].copy_from_slice(&[240, 200, 40]);
        }
    }
    VideoFrame::new(w, h, rgb, Duration::from_millis(100) * i).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vlm_gets_the_frames_and_its_answer_is_an_event() {
    let server = FakeServer::start(vec![
        Reply::status(
            200,
            r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"A yellow square moves to the right."},"finish_reason":"stop"}],"usage":{"prompt_tokens":812,"completion_tokens":9,"total_tokens":821}}"#,
        ),
        Reply::status(503, r#"{"error":{"message":"overloaded"}}"#),
    ])
    .await;
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let vlm = InstrumentedVlm::new(
        Box::new(OpenAiVlm::new(&server.base_url, "gpt-4o-mini", None)),
        Emitter::new(bus.clone(), "vision").with_session(Some("vision-test".into())),
        Arc::new(SystemClock::new()),
    );
    let clip: Vec<VideoFrame> = (0..10).map(|i| square_at(10 + i * 10, i)).collect();
    let shown = frames::sample(&clip, 3);
    let answer = vlm.infer(&shown, "What moves?").await.unwrap();
    assert_eq!(answer.text, "A yellow square moves to the right.");
    assert_eq!(
        (answer.input_tokens, answer.output_tokens),
        (Some(812), Some(9))
    );

    // The request: one user message, the prompt, then three JPEGs that decode to the
    // frames that were sampled (the square where it was in each).
    let request = &server.requests()[0];
    assert_eq!(request.path(), "/v1/chat/completions");
    assert_eq!(request.body["model"], "gpt-4o-mini");
    let content = request.body["messages"][0]["content"].as_array().unwrap();
    assert_eq!(content[0]["text"], "What moves?");
    assert_eq!(content.len(), 4);
    for (part, frame) in content[1..].iter().zip(&shown) {
        let url = part["image_url"]["url"].as_str().unwrap();
        let data = url.strip_prefix("data:image/jpeg;base64,").unwrap();
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let image = image::load_from_memory(&jpeg).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (160, 120));
        // JPEG is lossy: compare the square's centre pixel.
        let brightest_x = (0..160).max_by_key(|&x| image.get_pixel(x, 55)[0]).unwrap();
        let square_x = (0..160)
            .max_by_key(|&x| frame.rgb[((55 * 160 + x) * 3) as usize])
            .unwrap();
        assert!(
            brightest_x.abs_diff(square_x) < 30,
            "{brightest_x} vs {square_x}"
        );
    }

    // A 503: an error value and a vlm_error event, recoverable.
    let error = vlm.infer(&shown, "What moves?").await.unwrap_err();
    assert!(error.to_string().contains("overloaded"), "{error}");
    bus.wait(Duration::from_secs(5)).await.unwrap();
    assert_in_order(
        &recorder.types(),
        &[
            "plugin.vlm_inference_start",
            "plugin.vlm_inference_completed",
            "plugin.vlm_inference_start",
            "plugin.vlm_error",
        ],
    );
    let done = &recorder.of("plugin.vlm_inference_completed")[0];
    assert_eq!(done["frames_processed"], 3);
    assert_eq!(done["input_tokens"], 812);
    assert_eq!(done["session_id"], "vision-test");
    assert_eq!(recorder.of("plugin.vlm_error")[0]["is_recoverable"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_on_a_moving_square_and_on_a_video_ffmpeg_makes() {
    let bus = EventManager::new();
    let recorder = Recorder::attach(&bus);
    let mut motion = InstrumentedVideoProcessor::new(
        Box::new(MotionDetector::default()),
        Emitter::new(bus.clone(), "vision"),
        Arc::new(SystemClock::new()),
    );
    // Still for three frames, then moving for four: four detections.
    let mut found = 0;
    for i in 0..7 {
        let x = if i < 3 { 10 } else { 10 + (i - 2) * 20 };
        found += motion.process(&square_at(x, i)).await.unwrap().len();
    }
    assert_eq!(found, 4);

    // ffmpeg's moving test pattern, decoded back by ffmpeg at 5 frames/s.
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=160x120:rate=10",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&video)
        .status()
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(made.success());
    let clip = frames::read_video(&video, 5.0).await.unwrap();
    assert_eq!(clip.len(), 10, "2 s at 5 frames/s");
    assert_eq!(clip[1].timestamp, Duration::from_millis(200));
    let mut moving = 0;
    for frame in &clip {
        moving += motion.process(frame).await.unwrap().len();
    }
    assert!(moving >= 5, "testsrc moves in every frame: {moving}");
    bus.wait(Duration::from_secs(5)).await.unwrap();
    let events = recorder.of("plugin.video_processor.detection");
    assert_eq!(events.len(), 4 + moving);
    assert_eq!(events[0]["plugin_name"], "motion-detector");
    assert_eq!(
        events[0]["user_metadata"]["detections"][0]["label"],
        "motion"
    );

    // Not a video: a clear error naming ffmpeg and the file.
    let bogus = dir.path().join("bogus.mp4");
    std::fs::write(&bogus, "not a video").unwrap();
    let error = frames::read_video(&bogus, 5.0).await.unwrap_err();
    assert!(error.to_string().contains("bogus.mp4"), "{error}");
}
