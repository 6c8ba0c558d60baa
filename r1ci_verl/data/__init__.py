"""Task data: the task suite, the train/test split, parquet builders and SFT rendering."""
