"""The CLI's jobs: story files, render, clip and evaluate them, the doctor, the database
commands."""
