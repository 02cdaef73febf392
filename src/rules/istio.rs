//! Istio resource rules MG401-MG409 (SPEC section 4, "Istio resources").

use crate::object::Object;
use crate::rules::{Context, Violation};

pub fn check(_object: &Object<'_>, _ctx: &Context<'_>, _out: &mut Vec<Violation>) {}
