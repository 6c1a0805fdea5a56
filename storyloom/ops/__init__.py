"""Operations: health and metrics endpoints, structured logs without secrets, graceful stop.

Each module holds one idea; the CLI commands that run a process (the composition roots in
`storyloom/cli.py`) wire them in. Nothing here imports torch, so the slim bot image can use
all of it.
"""
