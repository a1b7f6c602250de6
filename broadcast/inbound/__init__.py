"""Inbound webhook requests (a resident's Telegram update, an SMS), stored before they are
acknowledged so that a crash loses none and a resend or replay is handled once."""
