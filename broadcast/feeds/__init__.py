"""Water-level and warning feeds that draft updates when a rule fires.

``models`` (sources, readings, alerts, rule memory), ``service`` (add, change, remove sources;
readings and chart series), ``api`` (``/api/v1/feeds``), ``rules`` (evaluation as pure functions),
``drafts`` (the update a firing rule writes); ``parse/`` reads documents, ``poll/`` fetches,
stores and schedules.
"""
