"""earmark.presets"""
