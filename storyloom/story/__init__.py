"""The story core: model, beat grammar, use cases and ports. No framework imports."""
