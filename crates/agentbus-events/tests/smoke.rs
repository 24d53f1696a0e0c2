use agentbus_events::base::ExceptionEvent;
use agentbus_events::{Example, Registry, schema, wire};

#[test]
fn smoke() {
    let e = ExceptionEvent::example();
    let s = wire::to_string(&e).unwrap();
    println!("{s}");
    let r = Registry::catalogue();
    let back = r.decode(s.as_bytes()).unwrap();
    assert!(back.downcast_ref::<ExceptionEvent>() == Some(&e));
    println!("{}", serde_json::to_string_pretty(&schema::wire_schema(r.iter())).unwrap());
    println!("{:?}", schema::fields(r.get("base.exception").unwrap()));
    println!("{}", r.decode(br#"{"type":"base.exception","event_id":"0193e000-0000-4000-8000-000000000001","timestamp":"2026-01-01T00:00:00Z","handler":3}"#).unwrap_err());
    println!("{}", r.decode(br#"{"type":"base.exception","event_id":"0193e000-0000-4000-8000-000000000001","timestamp":"2026-01-01T00:00:00Z","handler":"h"}"#).unwrap_err());
    println!("{}", r.decode(br#"{"type":"base.exception","event_id":"0193e000-0000-4000-8000-000000000001","timestamp":"2026-01-01T00:00:00Z","handler":"h","exc":{"message":"m","kind":4}}"#).unwrap_err());
    println!("{}", r.decode(br#"{"type":"base.exception","event_id":"0193e000-0000-4000-8000-000000000001","timestamp":"2026-01-01T00:00:00Z","handler":"h","exc":{"mess"#).unwrap_err());
}
