"""Reports made from run directories: pages (Markdown and HTML from one list of blocks) and figures (PNG)."""
