"""What the hotline serves over HTTP besides the flows: the Twilio webhook guard, status
callbacks and /healthz."""
