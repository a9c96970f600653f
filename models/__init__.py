"""Machine learning for atombot: intent classification/atomization and text generation."""
