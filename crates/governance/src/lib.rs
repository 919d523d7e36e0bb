//! placeholder
pub mod context;
pub mod detector;
pub mod kind;
pub mod validators;
pub use detector::{Detector, Entity};
pub use kind::PiiKind;
