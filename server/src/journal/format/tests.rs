use super::*;

fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut r = FrameReader::new(bytes, 0, bytes.len() as u64);
    let mut out = Vec::new();
    loop {
        let f = r.next_frame().unwrap();
        let last = !matches!(f, Frame::Record { .. });
        out.push(f);
        if last {
            return out;
        }
    }
}

fn sample() -> Vec<u8> {
    let mut buf = Vec::new();
    encode_change(&Record::Register { full_name: "Ann B", alias: "ann", birth_date: "01/02/2003" }, &mut buf).unwrap();
    encode_change(&Record::Message { sender: "ann", recipient: "bob", id: 7, text: "hi\nthere" }, &mut buf).unwrap();
    encode_change(&Record::Pop { alias: "bob", number: 0 }, &mut buf).unwrap();
    buf
}

#[test]
fn every_record_round_trips() {
    let mut buf = Vec::new();
    let changes = [
        Record::Register { full_name: "", alias: "a", birth_date: "" },
        Record::Unregister { alias: "a" },
        Record::Message { sender: "a", recipient: "b", id: u32::MAX, text: "ü" },
        Record::Ack { to: "a", id: 1 },
        Record::Pop { alias: "b", number: 7 },
    ];
    for c in &changes {
        encode_change(c, &mut buf).unwrap();
    }
    let queue = std::collections::VecDeque::new();
    let view =
        UserView { seq: 3, alias: "u", full_name: "U", birth_date: "d", last_id: 5, queue_head: 9, queue: &queue };
    encode_user(&view, &mut buf).unwrap();
    encode_queued_message("s", 3, "t", &mut buf).unwrap();
    encode_queued_ack(4, &mut buf).unwrap();
    encode_end(1, 2, &mut buf).unwrap();
    let got: Vec<Decoded> = frames(&buf)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Record { record, .. } => Some(record),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 9);
    for (c, d) in changes.iter().zip(&got) {
        assert_eq!(d.as_change().as_ref(), Some(c));
    }
    assert_eq!(
        got[5],
        Decoded::User {
            seq: Some(3),
            alias: "u".into(),
            full_name: "U".into(),
            birth_date: "d".into(),
            last_id: 5,
            queue_head: 9
        }
    );
    assert_eq!(got[8], Decoded::End { users: 1, entries: 2 });
}

#[test]
fn every_cut_of_the_last_frame_is_torn_never_corrupt() {
    let buf = sample();
    let mut r = FrameReader::new(&buf[..], 0, buf.len() as u64);
    r.next_frame().unwrap();
    r.next_frame().unwrap();
    let last_start = r.offset as usize;
    for cut in last_start + 1..buf.len() {
        let f = frames(&buf[..cut]);
        assert_eq!(f.len(), 3, "cut at {cut}");
        assert!(matches!(f[2], Frame::Torn { offset, .. } if offset == last_start as u64), "cut at {cut}: {f:?}");
    }
}

#[test]
fn a_flipped_byte_before_the_last_frame_is_corruption_and_in_it_a_torn_tail() {
    let buf = sample();
    let total = buf.len();
    for i in 0..total {
        let mut bad = buf.clone();
        bad[i] ^= 0x10;
        let f = frames(&bad);
        let tail = f.last().unwrap();
        match tail {
            Frame::Corrupt { .. } => {}
            Frame::Torn { offset, .. } => {
                // Only a frame that ends the file may be taken for a torn write.
                let mut r = FrameReader::new(&buf[*offset as usize..], 0, 0);
                let _ = r.next_frame().unwrap();
                assert_eq!(*offset as usize + r.offset as usize, total, "byte {i}");
            }
            other => panic!("byte {i}: flipped byte not detected: {other:?}"),
        }
    }
}

#[test]
fn zero_filled_tail_is_torn() {
    let mut buf = sample();
    let good = buf.len() as u64;
    buf.extend_from_slice(&[0u8; 100]);
    let f = frames(&buf);
    assert!(matches!(f.last(), Some(Frame::Torn { offset, .. }) if *offset == good));
}

#[test]
fn oversized_records_are_refused_and_leave_the_buffer_alone() {
    let mut buf = vec![1, 2, 3];
    let long = "x".repeat(MAX_RECORD_LEN);
    assert_eq!(encode_change(&Record::Pop { alias: &long, number: 0 }, &mut buf), Err(TooLong));
    assert_eq!(buf, [1, 2, 3]);
}

#[test]
fn headers_check_kind_and_generation() {
    let h = file_header(JOURNAL_MAGIC, 3);
    assert!(check_file_header(&h, JOURNAL_MAGIC, 3).is_ok());
    assert!(check_file_header(&h, JOURNAL_MAGIC, 4).is_err());
    assert!(check_file_header(&h, SNAPSHOT_MAGIC, 3).is_err());
    assert!(check_file_header(&h[..10], JOURNAL_MAGIC, 3).is_err());
}

#[test]
fn records_of_the_first_format_are_still_read() {
    // A Pop and a User as the first format wrote them: without entry, registration and queue numbers.
    let mut buf = Vec::new();
    frame(&mut buf, |p| {
        p.push(TAG_POP_UNNUMBERED);
        put_str(p, "bob")
    })
    .unwrap();
    frame(&mut buf, |p| {
        p.push(TAG_USER_UNNUMBERED);
        put_str(p, "u")?;
        put_str(p, "U")?;
        put_str(p, "d")?;
        p.extend_from_slice(&5u32.to_le_bytes());
        Ok(())
    })
    .unwrap();
    let got = frames(&buf);
    assert!(matches!(&got[0], Frame::Record { record: Decoded::Pop { number: POP_UNCHECKED, .. }, .. }));
    assert!(matches!(&got[1], Frame::Record { record: Decoded::User { seq: None, queue_head: 0, .. }, .. }));
}
