//! The CSV sources of docs/models.md §1.2: columns, types, required/primary keys and the
//! value checks whose failure quarantines a row.
//!
//! This is the contract the bronze layer lands; silver and gold SQL read the
//! `bronze_<source>` tables built from it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Scale of money columns (`dec` in the spec): Decimal128(18, 2).
pub const MONEY_SCALE: i8 = 2;
/// Scale of fractions such as `discount`: four places so 0.125 survives.
pub const FRACTION_SCALE: i8 = 4;

/// Largest quantity a built-in source accepts (a barcode typed into the
/// quantity field is quarantined at bronze instead of overflowing silver).
pub const QUANTITY_MAX: i64 = 1_000_000;
/// Largest money amount a built-in source accepts, scaled by
/// [`MONEY_SCALE`]: one billion. With [`QUANTITY_MAX`] a line's money stays
/// below 10^15, inside the Decimal128(18, 2) silver and gold publish.
pub const MONEY_MAX: i128 = 1_000_000_000 * 100;

/// The type of a column as landed in bronze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Int,
    /// Decimal128(18, scale).
    Dec(i8),
    Str,
    Date,
    Ts,
    Bool,
}

impl ColType {
    pub fn arrow_type(self) -> DataType {
        match self {
            ColType::Int => DataType::Int64,
            ColType::Dec(scale) => DataType::Decimal128(18, scale),
            ColType::Str => DataType::Utf8,
            ColType::Date => DataType::Date32,
            ColType::Ts => utc_micros(),
            ColType::Bool => DataType::Boolean,
        }
    }
}

/// `Timestamp(µs, "UTC")`, the storage type of every timestamp (docs/models.md §2).
pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A rule a parsed value must satisfy, else the row is quarantined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    None,
    /// Inclusive integer range.
    IntRange(i64, i64),
    /// Inclusive range on the scaled decimal value.
    DecRange(i128, i128),
    /// Case-insensitive membership.
    OneOf(&'static [&'static str]),
    /// A value that does not parse is landed as NULL instead of quarantining
    /// the row (for codes where the spec says "anything else = unknown").
    NullIfInvalid,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
    /// A required column must be in the header and non-empty on every row.
    pub required: bool,
    pub primary_key: bool,
    pub check: Check,
}

#[derive(Debug)]
pub struct Source {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Of two rows with one primary key, the one with the latest value of
    /// this column wins (then the later file and line); `None`: the later
    /// file and line.
    pub latest_by: Option<&'static str>,
}

impl Source {
    pub fn bronze_table(&self) -> String {
        format!("bronze_{}", self.name)
    }

    pub fn primary_key(&self) -> Option<&Column> {
        self.columns.iter().find(|c| c.primary_key)
    }

    /// The bronze schema: typed source columns, then the lineage columns.
    pub fn bronze_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c.name, c.ty.arrow_type(), !c.required))
            .collect();
        fields.extend(lineage_fields());
        Arc::new(Schema::new(fields))
    }
}

/// `_source_file`, `_source_line`, `_ingested_at`, `_run_id` (docs/models.md §2).
pub fn lineage_fields() -> Vec<Field> {
    vec![
        Field::new("_source_file", DataType::Utf8, false),
        Field::new("_source_line", DataType::Int64, false),
        Field::new("_ingested_at", utc_micros(), false),
        Field::new("_run_id", DataType::Utf8, false),
    ]
}

/// The quarantine table of every source: where, what and why.
pub fn quarantine_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw_values", DataType::Utf8, false),
    ];
    fields.extend(lineage_fields());
    Arc::new(Schema::new(fields))
}

const fn col(name: &'static str, ty: ColType) -> Column {
    Column {
        name,
        ty,
        required: false,
        primary_key: false,
        check: Check::None,
    }
}
const fn req(name: &'static str, ty: ColType) -> Column {
    Column {
        required: true,
        ..col(name, ty)
    }
}
const fn pk(name: &'static str, ty: ColType) -> Column {
    Column {
        required: true,
        primary_key: true,
        ..col(name, ty)
    }
}
const fn checked(c: Column, check: Check) -> Column {
    Column { check, ..c }
}

use ColType::*;

const MONEY: ColType = Dec(MONEY_SCALE);
const NON_NEGATIVE_MONEY: Check = Check::DecRange(0, MONEY_MAX);
const ANY_MONEY: Check = Check::DecRange(-MONEY_MAX, MONEY_MAX);

pub const ORDER_STATUSES: &[&str] = &[
    "pending",
    "processing",
    "shipped",
    "delivered",
    "cancelled",
    "returned",
];
pub const EVENT_TYPES: &[&str] = &["view", "click", "add_to_cart", "purchase"];

pub static SOURCES: &[Source] = &[
    Source {
        name: "customers",
        columns: &[
            pk("customer_id", Int),
            col("first_name", Str),
            col("last_name", Str),
            col("email", Str),
            col("gender", Str),
            col("birth_date", Date),
            col("city", Str),
            col("country", Str),
            req("registration_date", Date),
            col("updated_at", Ts),
        ],
        latest_by: Some("updated_at"),
    },
    Source {
        name: "product_categories",
        columns: &[
            pk("category_id", Int),
            req("category_name", Str),
            col("parent_category_id", Int),
        ],
        latest_by: None,
    },
    Source {
        name: "products",
        columns: &[
            pk("product_id", Int),
            req("product_name", Str),
            col("category_id", Int),
            col("brand", Str),
            checked(req("price", MONEY), NON_NEGATIVE_MONEY),
            checked(col("cost", MONEY), NON_NEGATIVE_MONEY),
            checked(
                col("stock_quantity", Int),
                Check::IntRange(0, QUANTITY_MAX * 1000),
            ),
            col("created_at", Date),
            col("is_active", Bool),
        ],
        latest_by: None,
    },
    Source {
        name: "orders",
        columns: &[
            pk("order_id", Int),
            req("customer_id", Int),
            req("order_date", Ts),
            checked(req("status", Str), Check::OneOf(ORDER_STATUSES)),
            col("payment_method", Str),
            checked(col("shipping_cost", MONEY), ANY_MONEY),
            col("delivered_at", Ts),
        ],
        latest_by: None,
    },
    Source {
        name: "order_items",
        columns: &[
            pk("order_item_id", Int),
            req("order_id", Int),
            req("product_id", Int),
            checked(req("quantity", Int), Check::IntRange(1, QUANTITY_MAX)),
            checked(req("unit_price", MONEY), NON_NEGATIVE_MONEY),
            checked(
                col("discount", Dec(FRACTION_SCALE)),
                Check::DecRange(0, 10_000),
            ),
        ],
        latest_by: None,
    },
    Source {
        name: "reviews",
        columns: &[
            pk("review_id", Int),
            req("product_id", Int),
            col("customer_id", Int),
            checked(req("rating", Int), Check::IntRange(1, 5)),
            req("review_date", Date),
            col("review_text", Str),
        ],
        latest_by: None,
    },
    Source {
        name: "events",
        columns: &[
            pk("event_id", Str),
            col("customer_id", Int),
            req("product_id", Int),
            checked(req("event_type", Str), Check::OneOf(EVENT_TYPES)),
            req("occurred_at", Ts),
            col("session_id", Str),
        ],
        latest_by: None,
    },
    Source {
        name: "usage_logs",
        columns: &[
            pk("usage_id", Str),
            req("user_id", Int),
            req("feature_key", Str),
            req("occurred_at", Ts),
            col("metadata", Str),
        ],
        latest_by: None,
    },
    Source {
        name: "lk_onboarding",
        columns: &[
            pk("user_id", Int),
            req("first_login_dt", Date),
            col("week_year", Str),
            checked(col("return", Int), Check::IntRange(0, 1)),
            col("return_dt", Date),
            col("activacion_dt", Date),
            col("setup_dt", Date),
            col("habito", Str),
            col("habito_dt", Str),
        ],
        latest_by: None,
    },
    Source {
        name: "dim_users",
        columns: &[
            pk("user_id", Int),
            // 1 and 2 are known segments; anything else or empty is "unknown" (docs/models.md §1.2).
            checked(col("segment", Int), Check::NullIfInvalid),
            col("rubro", Str),
        ],
        latest_by: None,
    },
    Source {
        name: "bt_users_transactions",
        columns: &[
            req("user_id", Int),
            req("transaction_dt", Ts),
            checked(req("type", Int), Check::IntRange(1, 9)),
            col("segment", Int),
        ],
        latest_by: None,
    },
];

/// Look a source up by name.
pub fn source(name: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.name == name)
}
