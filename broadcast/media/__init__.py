"""Photos and short videos on updates: checked by content, cleaned of metadata, stored on disk
under a random name, served at ``/media/{name}``, and handed to the channels with the update."""
