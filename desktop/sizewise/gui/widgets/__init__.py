"""Widgets shared by several pages: the sampling panel and the preset picker."""
