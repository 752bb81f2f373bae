"""The meeting domain (hội nghị): accounts, bridge points, meetings, and later agenda,
documents, annotations, floor, votes and minutes.

Plain classes and functions over a :class:`meetings.store.db.Database` and a
:class:`meetings.bus.Bus`; no web or media framework is imported here.
"""
