package fiberdb

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipeDial dials an in-memory socket; the far ends are kept so the test can
// close them.
type pipeDial struct {
	mu    sync.Mutex
	peers []net.Conn
	fail  error
	calls int
}

func (p *pipeDial) dial(context.Context, string, string) (net.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail != nil {
		return nil, p.fail
	}
	a, b := net.Pipe()
	p.peers = append(p.peers, b)
	return a, nil
}

func (p *pipeDial) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.peers {
		_ = c.Close()
	}
}

func newDialer(b *budget, p *pipeDial) *budgetDialer { return &budgetDialer{b: b, next: p.dial} }

func TestBudgetCountsSockets(t *testing.T) {
	p := &pipeDial{}
	defer p.closeAll()
	b := newBudget(2, nil)
	ctx := t.Context()

	c1, err := newDialer(b, p).dial(ctx, "tcp", "x")
	require.NoError(t, err)
	d2 := newDialer(b, p)
	c2, err := d2.dial(ctx, "tcp", "x")
	require.NoError(t, err)
	require.EqualValues(t, 2, b.used.Load())

	_, err = newDialer(b, p).dial(ctx, "tcp", "x")
	require.ErrorIs(t, err, ErrBudgetExhausted, "a third socket is over budget and nothing can be evicted")
	require.Equal(t, 2, p.calls, "an over-budget dial never reaches the network")

	// A cancel request dials through the attempt's own function while its
	// socket is open: the server gives it no connection slot, nor does the budget.
	cancelConn, err := d2.dial(ctx, "tcp", "x")
	require.NoError(t, err)
	require.NoError(t, cancelConn.Close())
	require.EqualValues(t, 2, b.used.Load())

	require.NoError(t, c1.Close())
	require.NoError(t, c1.Close(), "closing twice is allowed")
	require.EqualValues(t, 1, b.used.Load(), "a socket frees its slot once")
	require.NoError(t, c2.Close())
	require.EqualValues(t, 0, b.used.Load())
	require.EqualValues(t, 2, b.peak.Load())
}

func TestBudgetFailedDialFreesSlot(t *testing.T) {
	b := newBudget(1, nil)
	refused := errors.New("connection refused")
	_, err := newDialer(b, &pipeDial{fail: refused}).dial(t.Context(), "tcp", "x")
	require.ErrorIs(t, err, refused)
	require.EqualValues(t, 0, b.used.Load(), "a connect that failed holds no slot")
}

func TestBudgetEvictsIdle(t *testing.T) {
	p := &pipeDial{}
	defer p.closeAll()
	var idle []net.Conn
	b := newBudget(1, func(context.Context) bool {
		if len(idle) == 0 {
			return false
		}
		_ = idle[0].Close()
		idle = idle[1:]
		return true
	})
	c, err := newDialer(b, p).dial(t.Context(), "tcp", "x")
	require.NoError(t, err)
	idle = append(idle, c)

	c2, err := newDialer(b, p).dial(t.Context(), "tcp", "x")
	require.NoError(t, err, "an idle connection of another pool makes room")
	require.EqualValues(t, 1, b.used.Load())
	require.EqualValues(t, 1, b.evictions.Load())
	require.NoError(t, c2.Close())
}

func TestBudgetAwait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &pipeDial{}
		defer p.closeAll()
		b := newBudget(1, nil)
		held, err := newDialer(b, p).dial(t.Context(), "tcp", "x")
		require.NoError(t, err)

		try := func(ctx context.Context) (net.Conn, error) { return newDialer(b, p).dial(ctx, "tcp", "x") }

		// Released after 1s: the waiter gets the slot then, not before.
		go func() {
			time.Sleep(time.Second)
			_ = held.Close()
		}()
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		c, err := await(ctx, b, nil, try)
		require.NoError(t, err)
		require.Equal(t, time.Second, time.Since(start), "woken by the release itself")
		require.EqualValues(t, 1, b.waits.Load())

		// Nothing frees: the wait ends with the context, and says why.
		ctx2, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel2()
		_, err = await(ctx2, b, nil, try)
		require.ErrorIs(t, err, ErrBudgetExhausted)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.EqualValues(t, 1, b.timeouts.Load())
		require.Zero(t, b.waiting.Load(), "no waiter left queued")
		require.NoError(t, c.Close())
		require.Zero(t, b.used.Load())
	})
}

// Waiters get freed slots in the order they came, one slot each, and a new
// acquire does not take a slot a waiter is owed.
func TestBudgetAwaitFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &pipeDial{}
		defer p.closeAll()
		b := newBudget(2, nil)
		var held []net.Conn
		for range 2 {
			c, err := newDialer(b, p).dial(t.Context(), "tcp", "x")
			require.NoError(t, err)
			held = append(held, c)
		}
		try := func(ctx context.Context) (net.Conn, error) { return newDialer(b, p).dial(ctx, "tcp", "x") }
		var order []int
		var mu sync.Mutex
		var wg sync.WaitGroup
		got := make([]net.Conn, 3)
		for i := range 3 {
			wg.Go(func() {
				c, err := await(t.Context(), b, nil, try)
				assert.NoError(t, err)
				mu.Lock()
				order = append(order, i)
				got[i] = c
				mu.Unlock()
			})
			synctest.Wait() // queued before the next one comes
		}
		require.EqualValues(t, 3, b.waiting.Load())

		require.NoError(t, held[0].Close())
		require.EqualValues(t, 2, b.used.Load(), "the freed slot was handed on, not freed")
		_, err := try(t.Context())
		require.ErrorIs(t, err, ErrBudgetExhausted, "a newcomer cannot take the slot the oldest waiter is owed")
		synctest.Wait()
		require.NoError(t, held[1].Close())
		synctest.Wait()
		require.Equal(t, []int{0, 1}, order, "oldest first")
		require.EqualValues(t, 1, b.waiting.Load())
		require.EqualValues(t, 2, b.used.Load())

		require.NoError(t, got[0].Close())
		wg.Wait()
		require.Equal(t, []int{0, 1, 2}, order)
		require.NoError(t, got[1].Close())
		require.NoError(t, got[2].Close())
		require.Zero(t, b.used.Load(), "every slot came back once")
		require.Zero(t, b.waiting.Load())
	})
}

// A connection that goes idle wakes the oldest waiter of its pool, which
// takes it without a slot, and no other waiter; a connection of a spared
// pool wakes only its own pool's waiters.
func TestBudgetIdleWakesWaiterOfItsPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(1, nil)
		b.used.Store(1)
		poolA, poolB := &pooled{}, &pooled{}
		var idleA atomic.Bool
		tries := map[*pooled]*atomic.Int32{poolA: {}, poolB: {}}
		try := func(p *pooled) func(ctx context.Context) (struct{}, error) {
			return func(ctx context.Context) (struct{}, error) {
				tries[p].Add(1)
				if p == poolA && idleA.CompareAndSwap(true, false) {
					return struct{}{}, nil // the idle connection, no dial
				}
				if !b.tryReserve(waiterFrom(ctx)) {
					return struct{}{}, ErrBudgetExhausted
				}
				return struct{}{}, nil
			}
		}
		var wg sync.WaitGroup
		doneB := make(chan struct{})
		wg.Go(func() {
			_, err := await(t.Context(), b, poolB, try(poolB))
			assert.NoError(t, err)
			close(doneB)
		})
		synctest.Wait()
		wg.Go(func() {
			_, err := await(t.Context(), b, poolA, try(poolA))
			assert.NoError(t, err)
		})
		synctest.Wait()
		require.EqualValues(t, 2, b.waiting.Load())

		idleA.Store(true)
		b.idle(poolA, false)
		synctest.Wait()
		require.EqualValues(t, 1, b.waiting.Load(), "A's waiter took A's idle connection")
		require.EqualValues(t, 1, tries[poolB].Load(), "B's waiter was not woken for it")

		// A connection of a spared pool is left to the owed waiter's poll,
		// of another pool's: no wake, no try.
		b.idle(&pooled{}, true)
		synctest.Wait()
		require.EqualValues(t, 1, tries[poolB].Load(), "B's waiter was not woken for a spared pool's connection")
		b.idle(&pooled{}, false)
		synctest.Wait()
		require.EqualValues(t, 2, tries[poolB].Load(), "but is woken for any other pool's, to evict it")

		b.release()
		<-doneB
		wg.Wait()
		require.EqualValues(t, 1, b.used.Load(), "B's waiter holds the slot")
		require.Zero(t, b.waiting.Load())
	})
}

// A connection released without a signal (a caller of Engines.Engine
// releasing to its pool) is still found: the waiter owed the next slot
// polls.
func TestBudgetAwaitPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(1, nil)
		b.used.Store(1)
		go func() {
			time.Sleep(time.Second)
			b.used.Store(0) // freed without signal
		}()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := await(ctx, b, nil, func(ctx context.Context) (struct{}, error) {
			if !b.tryReserve(waiterFrom(ctx)) {
				return struct{}{}, ErrBudgetExhausted
			}
			return struct{}{}, nil
		})
		require.NoError(t, err)
		require.LessOrEqual(t, time.Since(start), time.Second+budgetPoll)
	})
}

// A deadline that ends a try under way, rather than the wait between two,
// is a timeout of the budget's wait too (pgxpool answers ctx's error).
func TestBudgetAwaitDeadlineDuringTry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(1, nil)
		b.used.Store(1)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		tries := 0
		_, err := await(ctx, b, nil, func(ctx context.Context) (struct{}, error) {
			tries++
			if tries == 1 {
				return struct{}{}, ErrBudgetExhausted
			}
			<-ctx.Done() // the second try is still running when the deadline comes
			return struct{}{}, ctx.Err()
		})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.EqualValues(t, 1, b.timeouts.Load())
		require.Zero(t, b.waiting.Load())
	})
}

// A waiter may evict a spared pool's connection once it has waited half the
// time its deadline gave it, or a second without one.
func TestBudgetWaiterImpatient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
		defer cancel()
		w := newBudgetWaiter(ctx, nil)
		time.Sleep(2*time.Second - time.Nanosecond)
		require.False(t, w.impatient())
		time.Sleep(time.Nanosecond)
		require.True(t, w.impatient(), "half of 4s")

		w = newBudgetWaiter(t.Context(), nil)
		time.Sleep(patience - time.Nanosecond)
		require.False(t, w.impatient())
		time.Sleep(time.Nanosecond)
		require.True(t, w.impatient(), "no deadline: patience")
	})
}

// fullBudgetTwoWaiters returns a budget whose slots are all in use, with two
// waiters queued, w1 first, and one slot released: w1 holds it.
func fullBudgetTwoWaiters(t *testing.T, slots int) (b *budget, w1, w2 *budgetWaiter) {
	t.Helper()
	b = newBudget(slots, nil)
	b.used.Store(int64(slots))
	w1, w2 = newBudgetWaiter(t.Context(), nil), newBudgetWaiter(t.Context(), nil)
	b.join(w1)
	b.join(w2)
	b.release() // to w1
	return b, w1, w2
}

// A waiter whose dial is under way is neither handed a second slot nor
// woken (the wake would be lost on it): both go to the next waiter, which
// is also the one that polls.
func TestBudgetSkipsAWaiterThatIsDialling(t *testing.T) {
	b, w1, w2 := fullBudgetTwoWaiters(t, 2)
	require.True(t, w1.slot)
	require.True(t, b.tryReserve(w1), "w1's dial takes its slot")
	require.True(t, w1.dialling)
	require.True(t, b.owed(w2), "w2 is owed the next slot, not w1")

	<-w1.woken // the wake that came with the slot
	b.idle(&pooled{}, false)
	require.Len(t, w2.woken, 1, "the idle connection woke w2")
	require.Empty(t, w1.woken)
	b.release()
	require.True(t, w2.slot, "the next slot went to w2")

	b.tried(w1)
	b.leave(w1) // its connection made, it leaves without a slot
	b.leave(w2) // w2's slot is freed: nobody waits
	require.EqualValues(t, 1, b.used.Load(), "w1's socket holds one slot")
	require.Zero(t, b.waiting.Load())
}

// A connect attempt made for a waiter keeps its slot from one socket to the
// next: with sslmode=prefer against a server without TLS, the socket the
// server refused TLS on closes and a plain one follows. Handed to the next
// waiter instead, the slot would leave the plain dial over budget.
func TestBudgetAttemptKeepsItsSlotForTheNextDial(t *testing.T) {
	p := &pipeDial{}
	defer p.closeAll()
	b, w1, w2 := fullBudgetTwoWaiters(t, 1)
	ctx := withWaiter(t.Context(), w1)
	d := &budgetDialer{b: b, next: p.dial, w: w1}

	probe, err := d.dial(ctx, "tcp", "x")
	require.NoError(t, err)
	require.NoError(t, probe.Close()) // the server refused TLS
	require.True(t, w1.slot, "the attempt's waiter keeps the slot")
	require.False(t, w2.slot, "w2 is not handed it")

	conn, err := d.dial(ctx, "tcp", "x")
	require.NoError(t, err, "the plain dial takes the kept slot")
	require.EqualValues(t, 1, b.used.Load())
	b.tried(w1)
	d.connected.Store(true)
	b.leave(w1)

	require.NoError(t, conn.Close(), "the connection's end")
	require.True(t, w2.slot, "the slot of a connection that connected goes to the next waiter")
	b.leave(w2)
	require.Zero(t, b.used.Load())
}

// A socket of an attempt whose waiter left (its acquire ended while pgxpool
// went on connecting in the background) hands its slot on: kept, it would
// be lost.
func TestBudgetAttemptOfAWaiterThatLeftHandsItsSlotOn(t *testing.T) {
	p := &pipeDial{}
	defer p.closeAll()
	b := newBudget(1, nil)
	w := newBudgetWaiter(t.Context(), nil)
	b.join(w) // takes the free slot
	d := &budgetDialer{b: b, next: p.dial, w: w}
	c, err := d.dial(withWaiter(t.Context(), w), "tcp", "x")
	require.NoError(t, err)
	b.tried(w)
	b.leave(w)
	require.NoError(t, c.Close())
	require.False(t, w.slot)
	require.Zero(t, b.used.Load(), "the slot is free again")
}

// Once a dial of a connect attempt finds the budget spent, the attempt's
// next dials (pgconn tries the next address, or the plain socket after the
// TLS one) fail at once: they would each evict an idle connection for an
// attempt that waits anyway, and a failure of another kind behind them
// would read as the budget's.
func TestBudgetAttemptEvictsOnce(t *testing.T) {
	p := &pipeDial{}
	defer p.closeAll()
	evicts := 0
	b := newBudget(1, func(context.Context) bool { evicts++; return false })
	held, err := newDialer(b, p).dial(t.Context(), "tcp", "x")
	require.NoError(t, err)
	defer held.Close()

	d := newDialer(b, p)
	for range 3 {
		_, err = d.dial(t.Context(), "tcp", "x")
		require.ErrorIs(t, err, ErrBudgetExhausted)
	}
	require.Equal(t, 1, evicts, "one eviction try for the attempt, not one per dial")
	require.Equal(t, 1, p.calls, "no dial of the attempt reached the network")
}

// A connect that pgxpool finishes after its acquire gave up serves no
// request: however long its waiter waited, it does not take the idle
// connections of the most used pools.
func TestBudgetWaiterThatLeftIsNotUrgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(1, nil)
		b.used.Store(1)
		w := newBudgetWaiter(t.Context(), nil)
		b.join(w)
		time.Sleep(patience)
		require.True(t, b.urgent(w), "queued and impatient")
		b.leave(w)
		require.False(t, b.urgent(w), "left the queue")
		require.False(t, b.urgent(nil))
	})
}
