//! A model's SQL: exactly one query, and the tables it reads, found with
//! DataFusion's own parser, so the run order is derived from the SQL and
//! never listed by hand.

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::error::{Error, Result};

/// Tables read by one SQL query (CTE names excluded), lower-cased and sorted.
pub fn sql_dependencies(sql: &str) -> Result<Vec<String>> {
    let mut statements = DFParser::parse_sql(sql)?;
    if statements.len() != 1 {
        return Err(Error::Input(format!(
            "a model holds exactly one SELECT statement, found {}",
            statements.len()
        )));
    }
    let statement = statements
        .pop_front()
        .ok_or_else(|| Error::Input("empty model".into()))?;
    let is_query =
        matches!(&statement, Statement::Statement(s) if matches!(**s, SqlStatement::Query(_)));
    if !is_query {
        return Err(Error::Input(
            "a model must be a query (SELECT … or WITH … SELECT …), not DDL or DML".into(),
        ));
    }
    let (tables, _ctes) = resolve_table_references(&statement, true)?;
    let mut deps: Vec<String> = tables.iter().map(|t| t.table().to_string()).collect();
    deps.sort();
    deps.dedup();
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_from_the_sql_and_skip_ctes() {
        let sql = "with o as (select * from silver_orders), \
                   final as (select o.*, c.email from o join Silver_Customers c using (customer_id) \
                             where o.order_id in (select order_id from silver_order_items)) \
                   select * from final";
        assert_eq!(
            sql_dependencies(sql).unwrap(),
            vec!["silver_customers", "silver_order_items", "silver_orders"]
        );
    }

    #[test]
    fn only_one_query_is_a_model() {
        assert!(sql_dependencies("select 1; select 2").is_err());
        assert!(sql_dependencies("drop table x").is_err());
        assert!(sql_dependencies("selec 1").is_err());
    }
}
