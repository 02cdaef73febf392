//! Any bytes POSTed to /validate or /mutate: a well-formed AdmissionReview
//! answer or a ReviewError (400), and, for a review that parses, every
//! property of its object (patch, idempotence, ratcheting, audit = review).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshguard::config::Config;
use meshguard::lenient::Labels;
use meshguard_fuzz::{Generated, KINDS, object_properties, webhook_answers};

fuzz_target!(|body: &[u8]| {
    let config = Config::default();
    let labels = Labels::from_pairs([("istio-injection", "enabled")]);
    for ns in [None, Some(&labels)] {
        let Some(review) = webhook_answers(body, &config, ns, None) else {
            return;
        };
        // The object inside, judged as a generated one would be.
        let request = &review["request"];
        let (Some(group), Some(version), Some(kind)) = (
            request["kind"]["group"].as_str(),
            request["kind"]["version"].as_str(),
            request["kind"]["kind"].as_str(),
        ) else {
            continue;
        };
        let Some(&(k, api_version, kind_name)) = KINDS.iter().find(|(_, api, name)| {
            *name == kind
                && *api
                    == if group.is_empty() {
                        version.to_owned()
                    } else {
                        format!("{group}/{version}")
                    }
        }) else {
            continue;
        };
        if !request["object"].is_object() {
            continue;
        }
        let generated = Generated {
            kind: k,
            api_version,
            kind_name,
            value: request["object"].clone(),
        };
        object_properties(&generated, &config, ns.map(|l| l.clone()).as_ref());
    }
});
