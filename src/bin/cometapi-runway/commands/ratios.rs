//! `ratios`: the output ratios the API accepts.

use cometapi_runway::Ratio;
use serde_json::{json, Value};

use crate::output;

/// The ratio table, or its JSON form.
pub fn run(json: bool) {
    if json {
        let rows: Vec<Value> = Ratio::ALL
            .iter()
            .map(|r| {
                json!({"ratio": r.to_string(), "width": r.width(), "height": r.height(),
                       "orientation": r.orientation().to_string()})
            })
            .collect();
        output::json_line(&json!({ "ratios": rows }));
        return;
    }
    let mut table = format!("{:<10} {:>5} {:>6}  {}", "RATIO", "WIDTH", "HEIGHT", "ORIENTATION");
    for r in Ratio::ALL {
        table.push_str(&format!("\n{:<10} {:>5} {:>6}  {}", r.to_string(), r.width(), r.height(), r.orientation()));
    }
    output::text(&table);
}
