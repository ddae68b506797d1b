"""apns provider."""
