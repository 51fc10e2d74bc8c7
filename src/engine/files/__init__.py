"""Attachments: streamed uploads, content checks, a content-addressed blob store, thumbnails, image rules, retention."""
