"""earmark.ui"""
