"""What runs only on a developer's machine, never in AWS: the local stack `make run` starts
(`dev/local_stack/`) and the loopback provider emulators it and the tests talk to (`dev/emulators/`)."""
