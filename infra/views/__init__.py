"""The read tables (`v_*`): their schema, the projection runner's writer, and every query.
No other module holds SQL on these tables."""
