"""fcm provider."""
