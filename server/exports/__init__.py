"""Monthly attendance exports: rows from duty logs, XLSX/CSV writers, background jobs and their worker."""
