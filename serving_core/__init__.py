"""The one predict contract every Python serving variant shares: settings, schemas, decoding, app, metrics."""
