"""Screens: history browser, permission prompt, theme picker, help."""
