//! JSON arrays handled as bytes: where each top-level element of an array lies, and arrays
//! joined from elements, so GitHub's element bytes are stored and served exactly as sent, never
//! re-serialised.
//!
//! The fetcher locates the elements of every fetched page and joins them into one snapshot body
//! (and splits a stored body back into its pages); the gateway locates them once per snapshot
//! version and cuts any page out of the stored bytes.

use std::ops::Range;

use serde_json::value::RawValue;

/// The byte ranges of a JSON array's elements in `body`; `Ok(None)` for valid JSON that is not
/// an array; `Err` for invalid JSON (e.g. a truncated body).
pub fn element_ranges(body: &[u8]) -> Result<Option<Vec<Range<usize>>>, serde_json::Error> {
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !is_array {
        serde_json::from_slice::<&RawValue>(body)?;
        return Ok(None);
    }
    let elements: Vec<&RawValue> = serde_json::from_slice(body)?;
    let start = body.as_ptr() as usize;
    Ok(Some(
        elements
            .iter()
            .map(|raw| {
                let offset = raw.get().as_ptr() as usize - start;
                offset..offset + raw.get().len()
            })
            .collect(),
    ))
}

/// Splits a merged array into consecutive runs of `counts` elements; `None` if the array does
/// not hold exactly that many elements.
pub fn split_by_counts(body: &[u8], counts: &[usize]) -> Option<Vec<Vec<Range<usize>>>> {
    let elements = element_ranges(body).ok()??;
    if counts.iter().sum::<usize>() != elements.len() {
        return None;
    }
    let mut rest = elements.as_slice();
    let mut out = Vec::with_capacity(counts.len());
    for &count in counts {
        let (page, tail) = rest.split_at(count);
        out.push(page.to_vec());
        rest = tail;
    }
    Some(out)
}

/// `[` + the elements joined by `,` + `]`: pages' elements become one array without
/// re-serialising a byte of them.
pub fn join<'a>(elements: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.push(b'[');
    for (i, element) in elements.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(element);
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices<'a>(body: &'a [u8], ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges
            .iter()
            .map(|r| std::str::from_utf8(&body[r.clone()]).expect("utf8"))
            .collect()
    }

    #[test]
    fn elements_are_located_byte_for_byte() {
        let body = br#" [ {"a": 1,  "b":"x\u00e9"} ,2,"s" , [ ] ,null ]
"#;
        let ranges = element_ranges(body).expect("valid").expect("array");
        assert_eq!(
            slices(body, &ranges),
            [r#"{"a": 1,  "b":"x\u00e9"}"#, "2", r#""s""#, "[ ]", "null"]
        );
    }

    #[test]
    fn objects_and_invalid_bodies_are_told_apart() {
        assert_eq!(element_ranges(br#"{"login":"x"}"#).expect("valid"), None);
        assert!(
            element_ranges(br#"[{"login":"x"},{"log"#).is_err(),
            "truncated array"
        );
        assert!(element_ranges(br#"{"login":"#).is_err(), "truncated object");
        assert!(element_ranges(b"").is_err());
        assert!(element_ranges(b"[1] [2]").is_err(), "trailing garbage");
        assert_eq!(element_ranges(b"[]").expect("valid"), Some(vec![]));
    }

    #[test]
    fn pages_merge_into_one_array_of_the_same_bytes() {
        let p1 = br#"[{"id":1, "name":"a"},{"id":2}]"#.as_slice();
        let p2 = br#"[ {"id":3,"x":[1, 2]} ]"#.as_slice();
        let p3 = b"[]".as_slice();
        let parts: Vec<&[u8]> = [p1, p2, p3]
            .iter()
            .flat_map(|p| {
                let r = element_ranges(p).expect("valid").expect("array");
                r.into_iter().map(move |r| &p[r])
            })
            .collect();
        let merged = join(parts.into_iter());
        assert_eq!(
            merged,
            br#"[{"id":1, "name":"a"},{"id":2},{"id":3,"x":[1, 2]}]"#
        );
        assert_eq!(join(std::iter::empty()), b"[]");
        // And the merged body splits back into the pages.
        let split = split_by_counts(&merged, &[2, 1, 0]).expect("splits");
        assert_eq!(
            slices(&merged, &split[0]),
            [r#"{"id":1, "name":"a"}"#, r#"{"id":2}"#]
        );
        assert_eq!(slices(&merged, &split[1]), [r#"{"id":3,"x":[1, 2]}"#]);
        assert!(split[2].is_empty());
        assert!(
            split_by_counts(&merged, &[2, 2]).is_none(),
            "counts must add up"
        );
        assert!(split_by_counts(br#"{"a":1}"#, &[1]).is_none());
    }
}

/// Property tests: bodies come from GitHub (or a corrupted Redis) and may be anything.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z ,\\[\\]\"{}]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn elements_are_the_array_items_and_join_back(
            items in prop::collection::vec(json_value(), 0..6),
            pretty in any::<bool>(),
        ) {
            let array = serde_json::Value::from(items.clone());
            let body = if pretty {
                serde_json::to_vec_pretty(&array)
            } else {
                serde_json::to_vec(&array)
            }
            .expect("serialises");
            let ranges = element_ranges(&body).expect("valid").expect("an array");
            prop_assert_eq!(ranges.len(), items.len());
            for (range, item) in ranges.iter().zip(&items) {
                let parsed: serde_json::Value =
                    serde_json::from_slice(&body[range.clone()]).expect("an element");
                prop_assert_eq!(&parsed, item);
            }
            let joined = join(ranges.iter().map(|r| &body[r.clone()]));
            let reparsed: serde_json::Value = serde_json::from_slice(&joined).expect("valid");
            prop_assert_eq!(reparsed, array);
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Some(ranges)) = element_ranges(&body) {
                for range in ranges {
                    prop_assert!(range.end <= body.len());
                }
            }
        }
    }
}
