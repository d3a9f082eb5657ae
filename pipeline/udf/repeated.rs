//! Finding the keys that occur more than once, without a hash table.
//!
//! De-duplication and `unique` data tests ask one question of a key column:
//! which values repeat? A `group by … having count(*) > 1` answers it with a
//! hash table holding every distinct key, which with tens of millions of
//! keys fits in no CPU cache, so every row misses it (docs/performance.md).
//! [`Buckets`] appends each key to one of 256 buckets, whose ends
//! stay in the first-level cache, then sorts each bucket on its own and
//! reads equal neighbours. Ingestion counts repeated primary keys with it,
//! and SQL asks it through the aggregate `repeated_keys(bigint)`, which
//! returns the repeated values as a list (`unnest` makes them rows).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{Accumulator, AggregateUDF, Volatility, create_udaf};

/// 64-bit values spread over 256 buckets by their top byte, sorted per
/// bucket when asked for repeats.
#[derive(Debug, Clone)]
pub struct Buckets {
    buckets: Vec<Vec<u64>>,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            buckets: vec![Vec::new(); 1 << Self::BUCKET_BITS],
        }
    }
}

impl Buckets {
    /// 256 buckets: with 4096 the bucket ends still waited on the
    /// second-level cache (docs/performance.md).
    pub const BUCKET_BITS: u32 = 8;

    /// Append `value` to bucket `bucket` (taken modulo the bucket count).
    #[inline]
    pub fn push(&mut self, bucket: usize, value: u64) {
        let index = bucket & ((1 << Self::BUCKET_BITS) - 1);
        self.buckets[index].push(value);
    }

    /// Append a value whose bits may not be spread (sequential integer
    /// ids): its bucket comes from a multiplicative hash of the value.
    #[inline]
    pub fn push_mixed(&mut self, value: u64) {
        // Fibonacci hashing: the top bits of the product depend on every bit
        // of the value, so consecutive ids land in different buckets.
        let bucket = value.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::BUCKET_BITS);
        self.buckets[bucket as usize].push(value);
    }

    /// Append every value of `other`, bucket by bucket.
    pub fn absorb(&mut self, other: Buckets) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            if mine.is_empty() {
                *mine = theirs;
            } else {
                mine.extend_from_slice(&theirs);
            }
        }
    }

    /// Bytes held, for DataFusion's memory accounting.
    pub fn allocated_bytes(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| b.capacity() * std::mem::size_of::<u64>())
            .sum::<usize>()
            + self.buckets.capacity() * std::mem::size_of::<Vec<u64>>()
    }

    /// Every value appended so far, in no particular order.
    fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().flatten().copied()
    }

    /// Sort every bucket; then equal values are neighbours.
    fn sorted(&mut self) -> &[Vec<u64>] {
        for bucket in &mut self.buckets {
            bucket.sort_unstable();
        }
        &self.buckets
    }

    /// Values appended after an equal one: the rows a de-duplication drops.
    pub fn repeats(mut self) -> u64 {
        self.sorted()
            .iter()
            .map(|b| b.windows(2).filter(|w| w[0] == w[1]).count() as u64)
            .sum()
    }

    /// Each value appended more than once, once.
    pub fn repeated_values(&mut self) -> Vec<u64> {
        self.sorted()
            .iter()
            .flat_map(|bucket| bucket.chunk_by(|a, b| a == b))
            .filter(|run| run.len() > 1)
            .map(|run| run[0])
            .collect()
    }
}

/// The aggregate `repeated_keys(key bigint) -> list<bigint>`: the non-NULL
/// keys that occur more than once, each once, in no particular order.
/// Silver de-duplication and `unique` tests hash text keys with `key_hash`
/// first, so every key they pass is 64 bits.
pub fn repeated_keys() -> AggregateUDF {
    create_udaf(
        "repeated_keys",
        vec![DataType::Int64],
        Arc::new(list_type()),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(RepeatedKeys::default()))),
        // A partial aggregation (several partitions, or a Ballista stage)
        // hands on every key it saw: a repeat may span partitions.
        Arc::new(vec![list_type()]),
    )
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)))
}

#[derive(Debug, Default)]
struct RepeatedKeys {
    keys: Buckets,
}

impl RepeatedKeys {
    fn add(&mut self, keys: &Int64Array) {
        if keys.null_count() == 0 {
            for &k in keys.values() {
                self.keys.push_mixed(k as u64);
            }
        } else {
            for k in keys.iter().flatten() {
                self.keys.push_mixed(k as u64);
            }
        }
    }

    fn list(values: Vec<i64>) -> ScalarValue {
        let lengths = [values.len()];
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::from_lengths(lengths),
            Arc::new(Int64Array::from(values)),
            None,
        );
        ScalarValue::List(Arc::new(list))
    }
}

impl Accumulator for RepeatedKeys {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if let Some(keys) = values.first() {
            self.add(keys.as_primitive::<Int64Type>());
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        if let Some(lists) = states.first() {
            for keys in lists.as_list::<i32>().iter().flatten() {
                self.add(keys.as_primitive::<Int64Type>());
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let all = self.keys.values().map(|k| k as i64).collect();
        Ok(vec![Self::list(all)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let repeated = self
            .keys
            .repeated_values()
            .into_iter()
            .map(|k| k as i64)
            .collect();
        Ok(Self::list(repeated))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.keys.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::prelude::SessionContext;

    #[test]
    fn buckets_report_each_repeated_value_once_and_count_every_repeat() {
        let mut b = Buckets::default();
        for v in 0..100_000u64 {
            b.push_mixed(v);
        }
        // 7 three times in all, 99 999 twice, u64::MAX twice.
        for v in [7, 7, 99_999, u64::MAX, u64::MAX] {
            b.push_mixed(v);
        }
        assert_eq!(b.clone().repeats(), 4);
        let mut repeated = b.repeated_values();
        repeated.sort_unstable();
        assert_eq!(repeated, vec![7, 99_999, u64::MAX]);
    }

    #[tokio::test]
    async fn repeated_keys_finds_repeats_across_batches_and_partitions_ignoring_nulls() {
        let ctx = SessionContext::new();
        ctx.register_udaf(repeated_keys());
        // Two partitions, so the repeat of 3 spans a partial/final merge.
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![Field::new(
            "k",
            DataType::Int64,
            true,
        )]));
        let batch = |v: Vec<Option<i64>>| {
            datafusion::arrow::record_batch::RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(v))],
            )
            .unwrap()
        };
        let table = datafusion::datasource::MemTable::try_new(
            schema.clone(),
            vec![
                vec![batch(vec![Some(1), Some(3), None, Some(-5)])],
                vec![batch(vec![Some(3), None, Some(-5), Some(-5), Some(2)])],
            ],
        )
        .unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        for partitions in ["1", "4"] {
            ctx.sql(&format!(
                "set datafusion.execution.target_partitions = {partitions}"
            ))
            .await
            .unwrap();
            let batches = ctx
                .sql("select unnest(repeated_keys(k)) as k from t order by k")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let keys: Vec<i64> = batches
                .iter()
                .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                .collect();
            assert_eq!(keys, vec![-5, 3], "target_partitions {partitions}");
        }
        // No repeats: no rows.
        let none = ctx
            .sql("select unnest(repeated_keys(k)) from t where k = 1")
            .await
            .unwrap()
            .count()
            .await
            .unwrap();
        assert_eq!(none, 0);
    }
}
