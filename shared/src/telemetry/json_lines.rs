//! The JSON log line format: exactly `tracing-subscriber`'s JSON format as the services configure
//! it (flattened event fields, current span, no span list), written without its overhead.
//!
//! The stock formatter serialises through an adaptor that turns every few bytes serde_json
//! writes back into a `&str` (a UTF-8 check each) and pushes them through `fmt::Write`, and it
//! renders the timestamp with `fmt` machinery for every field. Measured with callgrind on the
//! gateway serving a cached key, that was ~18,000 instructions per request log line, a third of
//! the whole request. [`JsonLines`] serialises the same entries with the same visitor
//! (`tracing-serde`'s, the one the stock formatter uses) into a byte buffer, renders the
//! timestamp's date and time once per second, and hands the finished line over in one write.
//!
//! Lines that name a span (an event inside one, or with an explicit parent) and events bridged
//! from the `log` crate are left to the stock formatter, which renders spans from their stored
//! fields and normalises log metadata: the output is the same either way, byte for byte
//! (`the_fast_path_writes_the_stock_formatters_bytes` below).

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{SerializeMap as _, Serializer as _};
use tracing::{Event, Subscriber};
use tracing_serde::AsSerde as _;
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The services' JSON event format (see the module documentation).
pub(crate) struct JsonLines {
    /// The stock formatter, configured identically, for the lines the fast path leaves alone.
    stock: Format<Json>,
}

impl JsonLines {
    /// The format `init` installs: flattened event fields, the current span, no span list.
    pub(crate) fn new() -> Self {
        Self {
            stock: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false),
        }
    }
}

thread_local! {
    /// The line being built (reused: no allocation per line once it has grown).
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The `YYYY-MM-DDTHH:MM:SS` text of the last second a line was stamped in.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let names_a_span = event.parent().is_some() || ctx.lookup_current().is_some();
        let from_log_crate = meta.fields().field("log.target").is_some();
        let Some(now) = (!names_a_span && !from_log_crate)
            .then(|| SystemTime::now().duration_since(UNIX_EPOCH).ok())
            .flatten()
        else {
            return self.stock.format_event(ctx, writer, event);
        };
        let mut stamp = [0u8; 27];
        if !timestamp(now.as_secs(), now.subsec_micros(), &mut stamp) {
            return self.stock.format_event(ctx, writer, event);
        }
        let stamp = std::str::from_utf8(&stamp).map_err(|_| fmt::Error)?;
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => write_line(&mut line, stamp, event, &mut writer),
            // Only if formatting a field logged in turn: a fresh buffer for the inner line.
            Err(_) => write_line(&mut Vec::new(), stamp, event, &mut writer),
        })
    }
}

/// Serialises the line into `line` and hands it to `writer` in one piece.
fn write_line(
    line: &mut Vec<u8>,
    stamp: &str,
    event: &Event<'_>,
    writer: &mut Writer<'_>,
) -> fmt::Result {
    line.clear();
    let meta = event.metadata();
    let mut serializer = serde_json::Serializer::new(&mut *line);
    let mut map = serializer.serialize_map(None).map_err(|_| fmt::Error)?;
    map.serialize_entry("timestamp", stamp)
        .map_err(|_| fmt::Error)?;
    map.serialize_entry("level", &meta.level().as_serde())
        .map_err(|_| fmt::Error)?;
    let mut visitor = tracing_serde::SerdeMapVisitor::new(map);
    event.record(&mut visitor);
    let mut map = visitor.take_serializer().map_err(|_| fmt::Error)?;
    map.serialize_entry("target", meta.target())
        .map_err(|_| fmt::Error)?;
    map.end().map_err(|_| fmt::Error)?;
    line.push(b'\n');
    writer.write_str(std::str::from_utf8(line).map_err(|_| fmt::Error)?)
}

/// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds: the stock timer's text) into `out`.
/// `false` for a date outside years 0-9999, which the stock timer spells differently.
fn timestamp(secs: u64, micros: u32, out: &mut [u8; 27]) -> bool {
    let cached = SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            let Some(text) = date_time(secs) else {
                return false;
            };
            *second = (secs, text);
        }
        out[..19].copy_from_slice(second.1.as_bytes());
        true
    });
    if !cached {
        return false;
    }
    out[19] = b'.';
    let mut rest = micros;
    for i in (20..26).rev() {
        out[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out[26] = b'Z';
    true
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time in seconds (UTC), for years 0-9999.
fn date_time(secs: u64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    if !(0..=9999).contains(&at.year()) {
        return None;
    }
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    (text.len() == 19).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Captures formatted output.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().expect("lock").clone();
            String::from_utf8(bytes)
                .expect("utf8")
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// The same events through the stock JSON layer and through [`JsonLines`], configured as
    /// `init` configures them.
    fn both(emit: impl Fn()) -> (Vec<String>, Vec<String>) {
        let stock = Capture::default();
        let fast = Capture::default();
        let (s, f) = (stock.clone(), fast.clone());
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(move || s.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .event_format(JsonLines::new())
                    .with_writer(move || f.clone()),
            );
        tracing::subscriber::with_default(subscriber, emit);
        (stock.lines(), fast.lines())
    }

    /// A line with its timestamp's value blanked (the two layers read the clock separately).
    fn without_time(line: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(line).expect("json line");
        let stamp = value["timestamp"].as_str().expect("timestamp");
        assert_eq!(stamp.len(), 27, "{stamp}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
            "{stamp}"
        );
        // Compare the exact text, not just the parsed value: key order and escaping matter.
        line.replacen(stamp, "", 1)
    }

    #[test]
    fn the_fast_path_writes_the_stock_formatters_bytes() {
        let (stock, fast) = both(|| {
            tracing::info!(
                method = %"GET",
                route = "/orgs/{org}",
                status = 200u16,
                latency_us = 25u64,
                delta = -3i64,
                ok = true,
                ratio = 0.5f64,
                cache_status = "hubcache; hit",
                odd = "quote \" backslash \\ newline \n tab \t bell \u{7} é 😀 </script>",
                debug = ?vec!["a", "b"],
                "request"
            );
            tracing::warn!("plain message with {} args", 2);
            tracing::error!(target: "custom::target", error = %"boom", "failed");
            let span = tracing::info_span!("poll", path = "/orgs/x", n = 3);
            span.in_scope(|| tracing::info!(changed = true, "inside a span"));
            tracing::info!(parent: &span, "explicit parent");
        });
        assert_eq!(stock.len(), 5, "{stock:?}");
        assert_eq!(fast.len(), stock.len(), "{fast:?}");
        for (s, f) in stock.iter().zip(&fast) {
            assert_eq!(without_time(f), without_time(s));
        }
        // The lines inside a span still carry it (through the stock formatter).
        assert!(fast[3].contains("\"name\":\"poll\""), "{}", fast[3]);
        assert!(fast[4].contains("\"name\":\"poll\""), "{}", fast[4]);
    }

    #[test]
    fn timestamps_match_the_stock_timer() {
        let mut out = [0u8; 27];
        assert!(timestamp(0, 0, &mut out));
        assert_eq!(&out, b"1970-01-01T00:00:00.000000Z");
        assert!(timestamp(1_795_959_474, 69_046, &mut out));
        assert_eq!(&out, b"2026-11-29T13:37:54.069046Z");
        assert!(timestamp(951_782_400, 999_999, &mut out));
        assert_eq!(&out, b"2000-02-29T00:00:00.999999Z");
        assert!(!timestamp(253_402_300_800, 0, &mut out), "year 10000");
    }
}
