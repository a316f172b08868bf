//! The OpenAPI document: the contract's own document (openapi.json beside Cargo.toml, exported from the Python
//! services' schemas, so both describe the same API), with this service's title and batch limit.

use serde_json::Value;

const DOCUMENT: &str = include_str!("../openapi.json");

pub fn document(variant: &str, max_batch_items: usize) -> String {
    let mut document: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON");
    if let Some(title) = document.pointer_mut("/info/title") {
        *title = Value::String(format!("serving-lab {variant}"));
    }
    let batch = "/paths/~1predict~1batch/post/requestBody/content";
    for pointer in [
        format!("{batch}/application~1json/schema/properties/images/maxItems"),
        format!("{batch}/multipart~1form-data/schema/properties/files/maxItems"),
    ] {
        if let Some(limit) = document.pointer_mut(&pointer) {
            *limit = Value::from(max_batch_items);
        }
    }
    document.to_string()
}

/// A page that links the document (no script from a CDN: the service works offline).
pub fn docs_page(variant: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>serving-lab {variant} - API</title></head>\
         <body><h1>serving-lab {variant}</h1><p>The predict contract, as an OpenAPI 3.1 document: \
         <a href=\"/openapi.json\">/openapi.json</a>.</p></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_every_endpoint_with_this_batch_limit() {
        let document: Value = serde_json::from_str(&document("rust", 7)).unwrap();
        assert_eq!(document["info"]["title"], "serving-lab rust");
        for (path, method) in [
            ("/predict", "post"),
            ("/predict/batch", "post"),
            ("/health", "get"),
            ("/", "get"),
            ("/ready", "get"),
            ("/info", "get"),
            ("/metrics", "get"),
            ("/admin/reload", "post"),
        ] {
            assert!(
                document["paths"][path][method].is_object(),
                "{method} {path}"
            );
        }
        let images = &document["paths"]["/predict/batch"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"]["properties"]["images"];
        assert_eq!(images["maxItems"], 7);
    }
}
