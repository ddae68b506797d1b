"""webpush provider."""
