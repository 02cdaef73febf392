//! Structure-aware: objects of every judged kind generated from the input
//! (so the fuzzer gets past the JSON parser), perturbed, under generated
//! configs and namespace labels; then every property of the object, and
//! the webhook's answer to its AdmissionReview with a mutated envelope.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use meshguard_fuzz::{
    config, namespace_labels, object, object_properties, perturb, review_json, webhook_answers,
};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(config), Ok(labels), Ok(mut generated)) =
        (config(&mut u), namespace_labels(&mut u), object(&mut u))
    else {
        return;
    };
    if perturb(&mut u, &mut generated.value).is_err() || !generated.value.is_object() {
        return;
    }
    object_properties(&generated, &config, labels.as_ref());
    // The envelope perturbed too: still an answer or a ReviewError.
    let mut review = review_json("u-3", &generated, "shop", "CREATE", None, true);
    if perturb(&mut u, &mut review).is_ok() {
        webhook_answers(
            review.to_string().as_bytes(),
            &config,
            labels.as_ref(),
            None,
        );
    }
});
