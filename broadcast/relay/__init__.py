"""The relay kit: ready-to-forward texts of a published update for the places volunteers reach
(WhatsApp groups, Facebook, neighbourhood apps, SMS), and a record of who relayed what where."""
