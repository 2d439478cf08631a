"""Excel-ready exports: CSV in UTF-8 with BOM, streamed; the monthly summary also as .xlsx."""
