use serde::{Deserialize, Serialize};

use super::Event;
use crate::{Metadata, Timestamp};

/// One market-data tick. Keyed by `symbol`.
///
/// ```json
/// {"symbol": "AAPL", "price": 227.52, "currency": "USD", "bid": 227.5, "ask": 227.54,
///  "volume": 1200, "exchange": "XNAS", "timestamp": "...", "_metadata": {...}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarketTick {
    pub symbol: String,
    pub price: f64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u64>,
    /// ISO 10383 market identifier code, e.g. `XNAS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    pub timestamp: Timestamp,
    #[serde(rename = "_metadata")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Event for MarketTick {
    fn topic(&self) -> &'static str {
        crate::topics::EXTERNAL_MARKET_DATA
    }

    fn key(&self) -> Option<String> {
        Some(self.symbol.clone())
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn timestamp(&self) -> &Timestamp {
        &self.timestamp
    }
}
