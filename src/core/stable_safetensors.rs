//! safetensors bytes that depend only on what they hold. The safetensors crate writes the
//! metadata in a `HashMap`'s order, which changes from run to run, so two saves of the same
//! weights would differ; a scan folder knows its model by SHA-256 and would take them for two.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use safetensors::View;
use serde_json::Value;

/// The header's length prefix, in bytes.
const LENGTH_PREFIX: usize = 8;
/// The header is padded with spaces to a multiple of this, as the crate pads it.
const ALIGNMENT: usize = 8;

/// `safetensors::serialize`, with the header's keys (and the metadata's) in sorted order.
pub fn serialize<S, V, I>(tensors: I, metadata: HashMap<String, String>) -> Result<Vec<u8>>
where
    S: AsRef<str> + Ord + std::fmt::Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
{
    let bytes = safetensors::serialize(tensors, Some(metadata))?;
    sort_header(&bytes)
}

/// The same file with its header rewritten in sorted key order (tensor data offsets count from
/// the end of the header, so they stay right whatever its length).
fn sort_header(bytes: &[u8]) -> Result<Vec<u8>> {
    let length = u64::from_le_bytes(bytes[..LENGTH_PREFIX].try_into()?) as usize;
    let header = &bytes[LENGTH_PREFIX..LENGTH_PREFIX + length];
    let mut entries: BTreeMap<String, Value> =
        serde_json::from_slice(header.trim_ascii_end()).context("unreadable safetensors header")?;
    // Sorted explicitly: a `Value`'s objects keep their read order if any dependency turns on
    // serde_json's `preserve_order`.
    if let Some(metadata) = entries.get_mut("__metadata__") {
        let sorted: BTreeMap<String, String> = serde_json::from_value(metadata.take())?;
        *metadata = serde_json::to_value(sorted)?;
    }
    let mut sorted = serde_json::to_vec(&entries)?;
    sorted.resize(sorted.len().next_multiple_of(ALIGNMENT), b' ');
    let data = &bytes[LENGTH_PREFIX + length..];
    let mut out = Vec::with_capacity(LENGTH_PREFIX + sorted.len() + data.len());
    out.extend((sorted.len() as u64).to_le_bytes());
    out.extend(sorted);
    out.extend(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;
    use safetensors::{Dtype, SafeTensors};

    fn save(values: &[f32], pairs: &[(String, String)]) -> Vec<u8> {
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = TensorView::new(Dtype::F32, vec![values.len()], &data).unwrap();
        let b = TensorView::new(Dtype::F32, vec![1], &data[..4]).unwrap();
        // A map built afresh each time: its iteration order is drawn anew.
        let metadata: HashMap<String, String> = pairs.iter().cloned().collect();
        serialize([("weight", a), ("bias", b)], metadata).unwrap()
    }

    #[test]
    fn the_same_contents_give_the_same_bytes_and_read_back() {
        let pairs: Vec<(String, String)> = (0..24)
            .map(|i| (format!("key{i}"), format!("value \"{i}\"")))
            .collect();
        let values = [1.5f32, -2.0, 3.25];
        let first = save(&values, &pairs);
        for _ in 0..5 {
            assert_eq!(save(&values, &pairs), first);
        }
        let file = SafeTensors::deserialize(&first).unwrap();
        let weight = file.tensor("weight").unwrap();
        assert_eq!(weight.shape(), [3]);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(weight.data(), bytes);
        assert_eq!(file.tensor("bias").unwrap().data(), &bytes[..4]);
        let (_, header) = SafeTensors::read_metadata(&first).unwrap();
        let metadata = header.metadata().clone().unwrap();
        assert_eq!(metadata, pairs.iter().cloned().collect());
        assert_eq!(u64::from_le_bytes(first[..8].try_into().unwrap()) % 8, 0);
    }
}
