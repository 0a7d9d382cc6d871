//! The status page's HTML: one self-contained document (inline CSS, one small inline script,
//! inline SVG; nothing fetched from elsewhere), every text from outside escaped by [`escape`],
//! and the Content-Security-Policy that allows exactly that style and script (by hash) and
//! nothing else.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hubcache_shared::SeenRateLimit;
use sha2::{Digest, Sha256};

use super::report::{EndpointReport, OrgReport, StatusReport};

/// The page's style sheet (allowed by hash: no `'unsafe-inline'`).
const STYLE: &str = "\
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}
main{max-width:1100px;margin:0 auto;padding:16px 20px 32px}
h1{font-size:22px;margin:0}h2{font-size:17px;margin:22px 0 8px}
.verdict{border-radius:8px;padding:14px 18px;color:#fff}
.verdict ul{margin:6px 0 0;padding-left:20px}.verdict li{margin:2px 0;word-break:break-word}
.green{background:#1f8a4c}.amber{background:#b86e00}.red{background:#c0262d}
.meta{color:#5b6473;font-size:12px;margin:6px 0 0}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.tile{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.tile b{display:block;font-size:20px}.tile span.l{color:#5b6473;font-size:12px}
.tile.wide{grid-column:span 2}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:8px;overflow:hidden;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e6e8ec;vertical-align:top}
th{background:#eef0f3;font-weight:600;font-size:12px}
td.err{color:#9b1c22;word-break:break-word;max-width:420px}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;color:#fff;vertical-align:middle}
.ok{background:#1f8a4c}.bad{background:#c0262d}.warn{background:#b86e00}
svg{display:block;margin-top:4px}
";

/// The refresh: every 5 s, `/status.json` updates the verdict, its reasons, the figures marked
/// `data-k` (a path into the JSON, `data-f` its format) and the sparkline. Text only
/// (`textContent`): nothing from the JSON is ever parsed as HTML.
const SCRIPT: &str = "\
(function(){
var fmt={int:function(v){return v==null?'\u{2013}':String(v)},
pct:function(v){return v==null?'\u{2013}':(v*100).toFixed(1)+'%'},
rate:function(v){return v==null?'\u{2013}':v.toFixed(2)},
secs:function(v){return v==null?'\u{2013}':v+' s'}};
function get(o,p){return p.split('.').reduce(function(a,k){return a==null?a:a[k]},o)}
function tick(){fetch('/status.json',{cache:'no-store'}).then(function(r){return r.json()}).then(function(s){
var v=document.getElementById('verdict');v.className='verdict '+s.verdict.level;
document.getElementById('level').textContent=s.verdict.level.toUpperCase();
var ul=document.getElementById('reasons');while(ul.firstChild){ul.removeChild(ul.firstChild)}
s.verdict.reasons.forEach(function(t){var li=document.createElement('li');li.textContent=t;ul.appendChild(li)});
document.querySelectorAll('[data-k]').forEach(function(e){e.textContent=(fmt[e.dataset.f]||fmt.int)(get(s,e.dataset.k))});
var l=document.getElementById('spark');if(l){l.setAttribute('points',spark(s.gateway.requests_per_sec_history))}
document.getElementById('live').textContent=' Live: last refreshed '+new Date(s.generated_at_ms).toISOString().slice(0,19)+'Z.';
}).catch(function(){})}
function spark(h){var m=Math.max.apply(null,h.concat([0.001]));return h.map(function(x,i){
return (h.length<2?0:i*240/(h.length-1)).toFixed(1)+','+(38-x/m*36).toFixed(1)}).join(' ')}
setInterval(tick,5000)})();
";

/// The CSP: nothing but the page's own style and script (by hash) and `fetch` to itself.
pub(crate) static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; connect-src 'self'; \
         img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
});

/// `sha256-<base64>` of `text`, as a CSP source expression.
fn csp_hash(text: &str) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// `text` safe inside HTML text and double- or single-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A Unix-milliseconds time as RFC 3339 UTC, to the second.
fn utc(at_ms: u64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(at_ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "\u{2013}".to_owned(), |v| v.to_string())
}

fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "\u{2013}".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// The sparkline's points (240 x 40), scaled to the highest rate.
fn spark_points(rates: &[f64]) -> String {
    let max = rates.iter().copied().fold(0.001_f64, f64::max);
    let step = if rates.len() < 2 {
        0.0
    } else {
        240.0 / (rates.len() - 1) as f64
    };
    rates
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{:.1},{:.1}", i as f64 * step, 38.0 - r / max * 36.0))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The whole page for `report`.
pub(crate) fn render(report: &StatusReport) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let level = report.verdict.level.as_str();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>hubcache status</title><style>{STYLE}</style></head><body><main>\
         <header id=\"verdict\" class=\"verdict {level}\"><h1>hubcache: \
         <span id=\"level\">{}</span></h1><ul id=\"reasons\">",
        level.to_uppercase()
    );
    for reason in &report.verdict.reasons {
        let _ = write!(html, "<li>{}</li>", escape(reason));
    }
    let _ = write!(
        html,
        "</ul></header><p class=\"meta\">Generated {} by this gateway replica; refreshed every \
         5 s from <code>/status.json</code>. Counters are this replica's since it started; \
         rates cover the last <span data-k=\"gateway.window_secs\">{}</span> s.\
         <span id=\"live\"></span></p>",
        utc(report.generated_at_ms),
        report.gateway.window_secs
    );
    render_gateway(&mut html, report);
    for (index, org) in report.orgs.iter().enumerate() {
        render_org(&mut html, index, org, report.generated_at_ms);
    }
    let _ = write!(html, "</main><script>{SCRIPT}</script></body></html>");
    html
}

/// One figure; `key` (a path into `/status.json`, empty for none) lets the script refresh it.
fn tile(html: &mut String, label: &str, key: &str, format: &str, value: &str) {
    let live = if key.is_empty() {
        String::new()
    } else {
        format!(" data-k=\"{key}\" data-f=\"{format}\"")
    };
    let _ = write!(
        html,
        "<div class=\"tile\"><span class=\"l\">{label}</span><b{live}>{}</b></div>",
        escape(value)
    );
}

fn render_gateway(html: &mut String, report: &StatusReport) {
    let g = &report.gateway;
    html.push_str("<h2>This gateway</h2><div class=\"tiles\">");
    let _ = write!(
        html,
        "<div class=\"tile wide\"><span class=\"l\">Requests/s (last {} min, every {} s)</span>\
         <b data-k=\"gateway.requests_per_sec\" data-f=\"rate\">{:.2}</b>\
         <svg width=\"240\" height=\"40\" viewBox=\"0 0 240 40\" role=\"img\" \
         aria-label=\"requests per second\"><polyline id=\"spark\" fill=\"none\" \
         stroke=\"#2f6fde\" stroke-width=\"2\" points=\"{}\"/></svg></div>",
        (g.requests_per_sec_history.len() as u64 * g.sample_every_secs).div_ceil(60),
        g.sample_every_secs,
        g.requests_per_sec,
        spark_points(&g.requests_per_sec_history)
    );
    tile(
        html,
        "Requests (total)",
        "gateway.requests_total",
        "int",
        &g.requests_total.to_string(),
    );
    tile(
        html,
        "Hit ratio: cached keys",
        "gateway.hit_ratio.cached_keys",
        "pct",
        &pct(g.hit_ratio.cached_keys),
    );
    tile(
        html,
        "Hit ratio: L1 (in-process)",
        "gateway.hit_ratio.l1",
        "pct",
        &pct(g.hit_ratio.l1),
    );
    tile(
        html,
        "Hit ratio: L2 (fleet, Redis)",
        "gateway.hit_ratio.l2",
        "pct",
        &pct(g.hit_ratio.l2),
    );
    tile(
        html,
        "Upstream requests",
        "gateway.upstream_requests",
        "int",
        &g.upstream_requests.to_string(),
    );
    tile(
        html,
        "Coalesced waiters",
        "gateway.coalesced_waiters",
        "int",
        &g.coalesced_waiters.to_string(),
    );
    tile(
        html,
        "Shed requests",
        "gateway.shed_requests",
        "int",
        &g.shed_requests.to_string(),
    );
    tile(html, "Redis", "gateway.redis", "int", g.redis);
    match &g.webhooks {
        Some(w) => {
            tile(
                html,
                "Webhooks accepted",
                "gateway.webhooks.accepted",
                "int",
                &w.accepted.to_string(),
            );
            tile(
                html,
                "Webhooks rejected",
                "gateway.webhooks.rejected",
                "int",
                &w.rejected.to_string(),
            );
            let last = w.last_delivery_at_ms.map(utc);
            tile(html, "Last webhook delivery", "", "", &opt(last));
        }
        None => html.push_str(
            "<div class=\"tile\"><span class=\"l\">Webhooks</span><b>off</b>\
             <span class=\"l\">no GITHUB_WEBHOOK_SECRET</span></div>",
        ),
    }
    budget_tile(
        html,
        "GitHub budget of the pass-through (its latest answer from GitHub)",
        "gateway.upstream_rate_limit.remaining",
        g.upstream_rate_limit,
        report.generated_at_ms,
    );
    html.push_str(
        "</div><p class=\"meta\">Content age: since the served content last changed. \
         Confirmed: since GitHub last confirmed it (the fetcher's last successful poll), against \
         the endpoint's refresh interval. Budgets: GitHub's <code>x-ratelimit-*</code> headers \
         as the fetcher recorded them in its snapshot statuses, and as this gateway's \
         pass-through last received them.</p>",
    );
}

/// A wide tile with a rate-limit budget: what is left, of how much, when it resets and how
/// old the figure is.
fn budget_tile(html: &mut String, label: &str, key: &str, rl: Option<SeenRateLimit>, now_ms: u64) {
    let detail = match rl {
        Some(rl) => format!(
            "of {} left; resets {} (in {} s); seen {} s ago",
            rl.limit,
            utc(rl.reset_epoch_secs * 1000),
            rl.reset_epoch_secs.saturating_sub(now_ms / 1000),
            now_ms.saturating_sub(rl.seen_at_ms) / 1000
        ),
        None => "not seen yet".to_owned(),
    };
    let _ = write!(
        html,
        "<div class=\"tile wide\"><span class=\"l\">{label}</span><b data-k=\"{key}\">{}</b>\
         <span class=\"l\">{}</span></div>",
        opt(rl.map(|rl| rl.remaining)),
        escape(&detail)
    );
}

fn render_org(html: &mut String, index: usize, org: &OrgReport, now_ms: u64) {
    let badge = match org.state {
        "ready" => "ok",
        "loading" => "warn",
        _ => "bad",
    };
    let _ = write!(
        html,
        "<h2>Organisation {} <span class=\"badge {badge}\" data-k=\"orgs.{index}.state\">{}</span></h2>\
         <div class=\"tiles\">",
        escape(&org.org),
        escape(org.state)
    );
    tile(
        html,
        "Views version",
        &format!("orgs.{index}.views_version"),
        "int",
        &opt(org.views_version),
    );
    budget_tile(
        html,
        "Fetcher's GitHub budget (from its snapshot statuses)",
        &format!("orgs.{index}.fetcher_rate_limit.remaining"),
        org.fetcher_rate_limit,
        now_ms,
    );
    html.push_str("</div>");
    html.push_str(
        "<table><tr><th>Endpoint</th><th>Version</th><th>Content age</th><th>Confirmed</th>\
         <th>Interval</th><th>Last poll</th><th>Last error</th></tr>",
    );
    for (e_index, endpoint) in org.endpoints.iter().enumerate() {
        render_endpoint(html, &format!("orgs.{index}.endpoints.{e_index}"), endpoint);
    }
    html.push_str("</table>");
}

fn render_endpoint(html: &mut String, key: &str, e: &EndpointReport) {
    let outcome = if e.failing {
        "<span class=\"badge bad\">failing</span>"
    } else if e.last_success_at_ms.is_some() {
        "<span class=\"badge ok\">ok</span>"
    } else {
        "<span class=\"badge warn\">not polled yet</span>"
    };
    let error = match (&e.last_error, e.last_error_at_ms) {
        (Some(error), at) => format!(
            "{} ({}) {}",
            escape(e.last_error_reason.as_deref().unwrap_or("error")),
            opt(at.map(utc)),
            escape(error)
        ),
        (None, _) => "\u{2013}".to_owned(),
    };
    let _ = write!(
        html,
        "<tr><td>{}</td><td data-k=\"{key}.version\">{}</td>\
         <td data-k=\"{key}.content_age_secs\" data-f=\"secs\">{}</td>\
         <td data-k=\"{key}.confirmed_age_secs\" data-f=\"secs\">{}</td><td>{} s</td><td>{outcome}</td>\
         <td class=\"err\">{error}</td></tr>",
        escape(&e.path),
        opt(e.version),
        opt(e.content_age_secs.map(|s| format!("{s} s"))),
        opt(e.confirmed_age_secs.map(|s| format!("{s} s"))),
        e.interval_secs
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_both_attribute_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" + 'y') & co</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;) &amp; co&lt;/script&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn the_policy_allows_exactly_the_pages_style_and_script() {
        let csp = CONTENT_SECURITY_POLICY.as_str();
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(
            csp.contains(&csp_hash(STYLE)) && csp.contains(&csp_hash(SCRIPT)),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
    }

    #[test]
    fn the_sparkline_spans_the_width() {
        assert_eq!(spark_points(&[]), "");
        assert_eq!(spark_points(&[0.0, 2.0]), "0.0,38.0 240.0,2.0");
    }
}
