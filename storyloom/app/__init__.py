"""The CLI's jobs: story files, render and clip them, the doctor, the database commands."""
