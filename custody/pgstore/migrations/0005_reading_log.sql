-- The reading log: readings in the order their batches were committed
-- (one watermark per committed batch), so a reader with a cursor finds
-- what was stored since without reading any shipper's readings.
CREATE INDEX readings_watermark ON readings (watermark);
