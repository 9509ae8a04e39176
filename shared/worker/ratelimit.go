package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/shared/model"
)

// The baseline provider's token bucket in the rate-limits table, shared by
// every worker: one token per model call. The baseline "model" costs nothing,
// so the bucket is sized to exercise the table's writes, never to pace a
// run (at 30 a second it bounded a 10,000-task local run to 5 minutes).
const (
	RateLimitCapacity  = 1000 // tokens the bucket holds
	RateLimitPerSecond = 1000 // tokens it regains a second
	// Attributes of the bucket's item (keyed model.AttrProvider), both
	// numbers; last_update is unix seconds with a fraction.
	AttrTokens     = "tokens"
	AttrLastUpdate = "last_update"
)

// takeToken takes one token from the bucket, as the benchmark's worker does:
// create the item if there is none (a conditional put), then read it, refill
// it for the time since last_update and take a token with an update on
// condition that nobody took one in between; retry on conflict, wait while
// it is empty.
func (w *Worker) takeToken(ctx context.Context) error {
	table := aws.String(w.Config.RateLimitTable)
	key := map[string]types.AttributeValue{model.AttrProvider: &types.AttributeValueMemberS{Value: BaselineModel}}
	if !w.bucketExists {
		_, err := w.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: table,
			Item: map[string]types.AttributeValue{
				model.AttrProvider: &types.AttributeValueMemberS{Value: BaselineModel},
				AttrTokens:         number(RateLimitCapacity),
				AttrLastUpdate:     &types.AttributeValueMemberN{Value: unixSeconds(w.Now())},
			},
			ConditionExpression: aws.String("attribute_not_exists(" + model.AttrProvider + ")"),
		})
		if err != nil && !conditionFailed(err) {
			return fmt.Errorf("create rate-limit bucket %s in %s: %w", BaselineModel, w.Config.RateLimitTable, err)
		}
		w.bucketExists = true
	}
	for {
		got, err := w.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("read rate-limit bucket %s: %w", BaselineModel, err)
		}
		oldTokens, ok1 := got.Item[AttrTokens].(*types.AttributeValueMemberN)
		last, ok2 := got.Item[AttrLastUpdate].(*types.AttributeValueMemberN)
		if !ok1 || !ok2 {
			return fmt.Errorf("rate-limit bucket %s in %s has no %s or %s", BaselineModel, w.Config.RateLimitTable, AttrTokens, AttrLastUpdate)
		}
		tokens, err1 := strconv.ParseFloat(oldTokens.Value, 64)
		lastSec, err2 := strconv.ParseFloat(last.Value, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("rate-limit bucket %s: %w", BaselineModel, err)
		}
		now := w.Now()
		elapsed := max(0, float64(now.UnixMicro())/1e6-lastSec)
		tokens = min(RateLimitCapacity, tokens+elapsed*RateLimitPerSecond)
		if tokens < 1 {
			wait := time.Duration((1 - tokens) / RateLimitPerSecond * float64(time.Second))
			if err := w.Sleep(ctx, max(wait, 10*time.Microsecond)); err != nil { // never spin
				return err
			}
			continue
		}
		_, err = w.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(w.Config.RateLimitTable),
			Key:                 key,
			UpdateExpression:    aws.String("SET " + AttrTokens + " = :new, " + AttrLastUpdate + " = :now"),
			ConditionExpression: aws.String(AttrTokens + " = :old"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":new": &types.AttributeValueMemberN{Value: strconv.FormatFloat(tokens-1, 'f', -1, 64)},
				":now": &types.AttributeValueMemberN{Value: unixSeconds(now)},
				":old": oldTokens,
			},
		})
		if conditionFailed(err) {
			continue // another worker took a token first: read again
		}
		if err != nil {
			return fmt.Errorf("take a token from rate-limit bucket %s: %w", BaselineModel, err)
		}
		return nil
	}
}

// unixSeconds is t as unix seconds with microseconds, as Python's time.time().
func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMicro())/1e6, 'f', 6, 64)
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
