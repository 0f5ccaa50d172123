"""Models: the catalog (one definition per model), the local store that installs and
verifies them, the resumable downloader, and the fp16 → float32 widening of IS-Net."""
